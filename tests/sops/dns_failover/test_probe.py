"""The probe hook against the real dnsmasq pair: what each way of breaking looks like on the wire, and its cost."""

from __future__ import annotations

import pytest

from sandbox.dns_pair import RECORDS, DnsPair
from toilless.hooks.dns import probe_server

QUERIES = [{"name": name, "type": "A"} for name in RECORDS]


def test_a_stopped_server_is_refused_at_once_not_after_timeouts(dns_pair: DnsPair) -> None:
    dns_pair.break_server("ns1", "stopped")
    address, port = dns_pair.address("ns1")
    probed = probe_server(address, port, QUERIES, tries=3, timeout_seconds=10.0)
    # The ICMP "port unreachable" answer of a connected UDP socket ends each query as "refused"; an unconnected socket
    # would wait out its 10 s timeout and say "timeout" (checked by what happened, not by a stopwatch: the machine's
    # load must not decide the test).
    assert {o["status"] for o in probed["outcomes"]} == {"refused"}
    assert all(o["elapsed_ms"] < 10_000 for o in probed["outcomes"])
    assert probed["tcp_port_open"] is False


@pytest.mark.parametrize(
    ("how", "rcode", "values"),
    [
        pytest.param("servfail", "SERVFAIL", [], id="servfail"),
        pytest.param("wrong_data", "NOERROR", ["198.51.100.66"], id="wrong-data"),
    ],
)
def test_what_a_failing_server_answers(dns_pair: DnsPair, how: str, rcode: str, values: list[str]) -> None:
    dns_pair.break_server("ns1", how)
    address, port = dns_pair.address("ns1")
    probed = probe_server(address, port, QUERIES[:1], tries=1, timeout_seconds=1.0)
    assert {(o["transport"], o["rcode"], tuple(o["values"])) for o in probed["outcomes"]} == {
        ("udp", rcode, tuple(values)),
        ("tcp", rcode, tuple(values)),
    }


def test_a_hung_server_times_out_but_its_port_accepts(dns_pair: DnsPair) -> None:
    dns_pair.break_server("ns1", "slow", seconds=30)
    address, port = dns_pair.address("ns1")
    probed = probe_server(address, port, QUERIES[:1], tries=1, timeout_seconds=0.3)
    assert {o["status"] for o in probed["outcomes"]} == {"timeout"}
    assert probed["tcp_port_open"] is True


def test_a_host_name_is_resolved_before_querying(dns_pair: DnsPair) -> None:
    _, port = dns_pair.address("ns1")
    probed = probe_server("localhost", port, QUERIES[:1], tries=1, timeout_seconds=1.0)
    assert [o["values"] for o in probed["outcomes"]] == [["192.0.2.10"], ["192.0.2.10"]]


def test_an_unresolvable_host_name_is_an_error_not_a_crash() -> None:
    probed = probe_server("no-such-host.invalid", 53, QUERIES[:1], tries=1, timeout_seconds=0.3)
    assert {o["status"] for o in probed["outcomes"]} == {"error"}
    assert "cannot resolve" in probed["outcomes"][0]["error"]
    assert probed["tcp_port_open"] is False


def test_a_hung_server_costs_the_tries_not_every_name_and_transport(dns_pair: DnsPair) -> None:
    dns_pair.break_server("ns1", "slow", seconds=30)
    address, port = dns_pair.address("ns1")
    probed = probe_server(address, port, QUERIES, tries=2, timeout_seconds=0.5)
    assert len(probed["outcomes"]) == 8
    assert {o["status"] for o in probed["outcomes"]} == {"timeout"}
    # 2 names x 2 transports x 2 tries: one after the other the probe would last the sum of its queries; the four
    # streams at once last about a quarter of it. Compared with the probe's own clock, so load slows both alike.
    waited_ms = sum(o["elapsed_ms"] for o in probed["outcomes"])
    assert probed["elapsed_ms"] < waited_ms / 2
