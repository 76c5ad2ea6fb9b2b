"""The dnsTool hook: exact calls as an argv, a timeout, and strict parsing of what the tool prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from toilless.hooks.dns import DnsToolError, DnsToolHook


def tool(tmp_path: Path, body: str) -> list[str]:
    script = tmp_path / "dnsTool"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(0o755)
    return [str(script)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param('echo "ns1"; echo "ns2"', "expected one line", id="two-lines"),
        pytest.param('echo "ns3"', "expected one line naming one of ns1, ns2", id="unknown-server"),
        pytest.param('echo "active: ns1"', "expected one line", id="decorated"),
        pytest.param('echo ""', "expected one line", id="empty"),
        pytest.param('echo "ns1; reboot"', "expected one line", id="metacharacters"),
        pytest.param('echo "agent down" >&2; exit 4', "exited 4: agent down", id="non-zero-exit"),
    ],
)
def test_active_server_output_is_parsed_strictly(tmp_path: Path, body: str, message: str) -> None:
    hook = DnsToolHook(command=tool(tmp_path, body), timeout_seconds=5)
    with pytest.raises(DnsToolError, match=message):
        hook.active_server(["ns1", "ns2"])


def test_active_server_accepts_exactly_one_known_name(tmp_path: Path) -> None:
    hook = DnsToolHook(command=tool(tmp_path, 'test "$*" = "-q active_server" && echo ns2'), timeout_seconds=5)
    assert hook.active_server(["ns1", "ns2"]) == "ns2"


def test_the_sops_exact_calls_as_argv(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    hook = DnsToolHook(command=tool(tmp_path, f'printf "%s|" "$@" >> {calls}; echo >> {calls}'), timeout_seconds=5)
    assert hook.shutdown("ns1")["ok"] is True
    assert hook.failover("ns2", force=False)["ok"] is True
    assert hook.failover("ns2", force=True)["ok"] is True
    assert calls.read_text().splitlines() == [
        "-a|shutdown|-s|ns1|",
        "-a|failover|-s|ns2|",
        "-a|failover|-s|ns2|-f|",
    ]


def test_a_call_that_hangs_is_killed_at_the_timeout(tmp_path: Path) -> None:
    hook = DnsToolHook(command=tool(tmp_path, "exec sleep 30"), timeout_seconds=0.5)
    with pytest.raises(DnsToolError, match=r"no answer within 0\.5 s"):
        hook.active_server(["ns1", "ns2"])
    result = hook.shutdown("ns1")
    assert result["ok"] is False
    assert "killed" in result["detail"]


def test_a_failed_action_reports_the_tools_words_masked(tmp_path: Path) -> None:
    hook = DnsToolHook(command=tool(tmp_path, 'echo "denied for https://admin:hunter2@dns.example" >&2; exit 1'))
    result = hook.shutdown("ns1")
    assert result["ok"] is False
    assert result["exit_code"] == 1
    assert "hunter2" not in result["detail"]
