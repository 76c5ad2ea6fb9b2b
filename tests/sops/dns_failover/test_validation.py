"""The contracts checked before anything is sent: DNS names (RFC 1035), server addresses, ports, commands."""

from __future__ import annotations

from typing import Any

import pytest

from toilless.sops.dns_failover.validation import (
    DnsInputError,
    check_command,
    check_dns_name,
    check_expected_values,
    check_port,
    check_server_address,
    check_servers,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("www.example.test", "www.example.test", id="plain"),
        pytest.param("WWW.Example.TEST.", "www.example.test", id="trailing-dot-and-case"),
        pytest.param("3com.example", "3com.example", id="leading-digit-rfc1123"),
        pytest.param("_dns._udp.example", "_dns._udp.example", id="service-labels"),
        pytest.param("a" * 63 + ".test", "a" * 63 + ".test", id="label-of-63"),
        pytest.param(".".join(["a" * 63] * 3 + ["b" * 61]), ".".join(["a" * 63] * 3 + ["b" * 61]), id="name-of-253"),
    ],
)
def test_valid_dns_names(name: str, expected: str) -> None:
    assert check_dns_name(name) == expected


@pytest.mark.parametrize(
    ("name", "message"),
    [
        pytest.param("", "non-empty", id="empty"),
        pytest.param(".", "root alone", id="root"),
        pytest.param("a..b", "empty label", id="empty-label"),
        pytest.param("a" * 64 + ".test", "at most 63", id="label-of-64"),
        pytest.param(".".join(["a" * 63] * 3 + ["b" * 62]), "RFC 1035 allows 253", id="name-of-254"),
        pytest.param("-bad.example", "must not start or end with '-'", id="leading-hyphen"),
        pytest.param("bad-.example", "must not start or end with '-'", id="trailing-hyphen"),
        pytest.param("sp ace.example", "letters, digits", id="space"),
        pytest.param("semi;colon.example", "letters, digits", id="shell-metacharacter"),
        pytest.param("bücher.example", "ASCII", id="unicode"),
        pytest.param(None, "non-empty string", id="none"),
    ],
)
def test_invalid_dns_names(name: Any, message: str) -> None:
    with pytest.raises(DnsInputError, match=message):
        check_dns_name(name)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        pytest.param("127.0.0.1", "127.0.0.1", id="ipv4"),
        pytest.param("2001:DB8::1", "2001:db8::1", id="ipv6-normalised"),
        pytest.param("ns1.example.net", "ns1.example.net", id="host-name"),
    ],
)
def test_valid_server_addresses(address: str, expected: str) -> None:
    assert check_server_address(address) == expected


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("999.1.1.1", id="ipv4-out-of-range"),
        pytest.param("not an address!", id="spaces"),
        pytest.param("127.0.0.1; rm -rf /", id="shell-injection"),
        pytest.param("", id="empty"),
        pytest.param(53, id="not-a-string"),
    ],
)
def test_invalid_server_addresses(address: Any) -> None:
    with pytest.raises(DnsInputError, match="server address"):
        check_server_address(address)


@pytest.mark.parametrize("port", [0, 65536, "53", True, 5.5])
def test_invalid_ports(port: Any) -> None:
    with pytest.raises(DnsInputError, match="1-65535"):
        check_port(port)


def test_command_must_exist_and_be_executable(tmp_path) -> None:
    with pytest.raises(DnsInputError, match="not found or not executable"):
        check_command(["/nonexistent/dnsTool"])
    with pytest.raises(DnsInputError, match="not found or not executable"):
        check_command(["dnsTool-surely-not-on-path"])
    script = tmp_path / "tool"
    script.write_text("#!/bin/sh\n")
    with pytest.raises(DnsInputError, match="not found or not executable"):
        check_command([str(script)])
    script.chmod(0o755)
    assert check_command([str(script), "-v"]) == [str(script), "-v"]


@pytest.mark.parametrize(
    "command",
    [
        pytest.param("dnsTool -q active_server; reboot", id="shell-line"),
        pytest.param([], id="empty"),
        pytest.param(["sh", ""], id="empty-argument"),
    ],
)
def test_command_is_an_argv_list(command: Any) -> None:
    with pytest.raises(DnsInputError):
        check_command(command)


@pytest.mark.parametrize(
    ("kind", "values", "message"),
    [
        pytest.param("A", ["2001:db8::1"], "not an A address", id="ipv6-for-a"),
        pytest.param("AAAA", ["192.0.2.1"], "not an AAAA address", id="ipv4-for-aaaa"),
        pytest.param("A", ["www"], "not an IP address", id="name-for-a"),
        pytest.param("A", [], "non-empty", id="nothing-expected"),
    ],
)
def test_expected_values(kind: str, values: list[str], message: str) -> None:
    with pytest.raises(DnsInputError, match=message):
        check_expected_values(kind, values, what="q")


def test_servers_need_exactly_two_distinct() -> None:
    with pytest.raises(DnsInputError, match="exactly two"):
        check_servers({"ns1": {"address": "127.0.0.1"}})
    with pytest.raises(DnsInputError, match="same address"):
        check_servers({"ns1": {"address": "127.0.0.1"}, "ns2": {"address": "127.0.0.1"}})
    with pytest.raises(DnsInputError, match="server name"):
        check_servers({"ns1;x": {"address": "127.0.0.1"}, "ns2": {"address": "127.0.0.2"}})
