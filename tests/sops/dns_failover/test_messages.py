"""The report: who hears what, and hostile text from servers and logs stays inert in Slack."""

from __future__ import annotations

from typing import Any

from toilless.common.reporting import render_report
from toilless.sops.dns_failover import messages
from toilless.sops.dns_failover.steps import choose_path

SETTINGS: dict[str, Any] = {
    "provider": "command",
    "incident": "alert:x:y",
    "dry_run": False,
    "allow_failover": True,
    "approval": {"required": False},
    "alert": {"alertname": "DNSServerNotAnswering", "startsAt": "2026-01-01T00:00:00Z"},
}
FOUND = {"active": "ns1", "standby": "ns2", "found_at": "t0"}


def probed(log_lines: list[str]) -> dict[str, Any]:
    servers = {
        "ns1": {"state": "failing", "reasons": ["www.example.test A over UDP: SERVFAIL"], "probe_ms": 3},
        "ns2": {"state": "answering", "reasons": ["ok"], "probe_ms": 3},
    }
    return {"servers": servers, "probed_at": "t1", "active_log": {"source": "file x", "lines": log_lines}}


DECISION = {
    "action": "wait",
    "active": "ns1",
    "standby": "ns2",
    "active_state": "failing",
    "standby_state": "answering",
    "reason": "wait",
    "decided_at": "t2",
}


def test_failover_report_goes_to_networking_and_oncall_with_the_timeline() -> None:
    wait = {
        "status": "timeout",
        "waited_seconds": 300,
        "looks": 21,
        "active_state": "failing",
        "standby_state": "answering",
    }
    shutdown = {
        "final": {**DECISION, "action": "failover_now", "reason": "did not recover"},
        "outcome": "done",
        "ok": True,
    }
    moved = {"ok": True, "outcome": "done", "forced": False, "detail": "failover ns2: ok", "at": "t4"}
    report = messages.report(
        SETTINGS,
        found=FOUND,
        probed=probed([]),
        decision=DECISION,
        wait=wait,
        shutdown=shutdown,
        moved=moved,
        verified={"verified": True, "detail": "ns2 answers", "at": "t5"},
    )
    assert report["audiences"] == ["networking", "oncall"]
    assert report["title"] == "DNS failover: ns1 -> ns2 done and verified"
    text = "\n".join(map(str, report["lines"]))
    assert "wait ended: timeout after 300 s, 21 look(s)" in text
    assert "please restore ns1" in text


def test_hostile_log_lines_and_answers_are_inert() -> None:
    hostile = ["<!channel> ```break out``` see https://evil.example/x <@U123>"]
    report = messages.report(
        SETTINGS,
        found=FOUND,
        probed=probed(hostile),
        decision=DECISION,
        wait={"status": "recovered", "standby_state": "answering"},
        shutdown={"final": {**DECISION, "action": "none"}, "outcome": "not_needed"},
        moved={"outcome": "not_needed"},
        verified=None,
    )
    message = render_report(title=report["title"], lines=report["lines"], status=report["status"])
    assert "<!channel>" not in message["text"]
    assert "<@U123>" not in message["text"]
    # Inside the log's code block a URL is shown, never made a link (Slack does not link inside code blocks).
    assert "<https://evil.example" not in message["text"]
    assert "```break out```" not in message["text"]
    assert report["title"] == "DNS: ns1 recovered, no failover"


def test_approval_is_asked_only_for_a_real_failover() -> None:
    timeout = {"status": "timeout", "active_state": "failing", "standby_state": "answering"}
    needs = {**SETTINGS, "approval": {"required": True}}
    assert choose_path(needs, FOUND, DECISION, timeout) == "request_approval"
    assert choose_path({**needs, "dry_run": True}, FOUND, DECISION, timeout) == "shut_down_active"
    assert choose_path(needs, FOUND, DECISION, {"status": "recovered"}) == "shut_down_active"
    assert choose_path(SETTINGS, FOUND, DECISION, timeout) == "shut_down_active"


def test_a_rejected_approval_is_reported_as_nothing_changed(monkeypatch) -> None:
    from toilless.sops.dns_failover import steps

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr("toilless.common.reporting.send_report", lambda context, **kwargs: sent.append(kwargs))
    timeout = {"status": "timeout", "active_state": "failing", "standby_state": "answering"}
    settings = {**SETTINGS, "channels": {"networking": "networking", "oncall": "urgent"}}
    report = steps.report_failover({}, settings, FOUND, probed([]), DECISION, timeout, None, None, None)
    assert report["title"] == "DNS: failover ns1 -> ns2 not done (not approved)"
    assert [message["channel"] for message in sent] == ["networking", "urgent"]
