"""dns_failover end to end (dag.test) against two real dnsmasq servers, the dnsTool stand-in and the Slack sink.

Each test breaks the active server (ns1) the way that matters (process stopped, SERVFAIL, wrong data, slow) and
checks the decision, what the tool was asked to do, which server is active at the end, and the report.
"""

from __future__ import annotations

import pytest

from tests.sops.dns_failover.conftest import FAILOVER_NS2, FORCED_NS2, SHUTDOWN_NS1, actions, alert, report_text, xcom

pytestmark = pytest.mark.integration


def test_active_down_fails_over_at_once_and_verifies(dns_env, run_failover, slack_sink) -> None:
    pair = dns_env()
    pair.break_server("ns1", "stopped")
    run = run_failover()
    assert run.state == "success"
    decision, _ = xcom(run, "decide_failover")
    assert decision["action"] == "failover_now"
    assert decision["active_state"] == "unreachable"
    _, wait_state = xcom(run, "wait_for_recovery")
    assert wait_state == "skipped"
    verified, _ = xcom(run, "verify_failover")
    assert verified["verified"] is True
    assert pair.active == "ns2"
    # The shutdown of a stopped server succeeds (nothing runs), so no force.
    assert actions(pair) == [SHUTDOWN_NS1, FAILOVER_NS2]
    text = report_text(slack_sink)
    assert "ns1 -&gt; ns2 done and verified" in text or "ns1 -> ns2 done and verified" in text
    assert "please restore ns1" in text
    assert slack_sink.messages("urgent")


def test_active_answering_changes_nothing(dns_env, run_failover, slack_sink) -> None:
    pair = dns_env()
    run = run_failover()
    assert run.state == "success"
    decision, _ = xcom(run, "decide_failover")
    assert decision["action"] == "none"
    assert actions(pair) == []
    assert pair.active == "ns1"
    assert "ns1 answers correctly, nothing to do" in report_text(slack_sink, "urgent")
    assert not slack_sink.messages("networking")


def test_failing_active_that_recovers_within_the_wait_is_not_failed_over(dns_env, run_failover, slack_sink) -> None:
    pair = dns_env(wait_minutes=0.5, poll_seconds=0.3)
    pair.break_server("ns1", "servfail")
    # Back once the first probe has seen it fail (2 names x UDP/TCP x 2 tries), while the wait looks again.
    pair.restore_when_queried("ns1", 8, delay=0.5)
    run = run_failover()
    assert run.state == "success"
    decision, _ = xcom(run, "decide_failover")
    assert (decision["action"], decision["active_state"]) == ("wait", "failing")
    wait, _ = xcom(run, "wait_for_recovery")
    # Recovered at one of the wait's looks (which one depends on how fast the tasks before it ran), inside the wait.
    assert wait["status"] == "recovered"
    assert wait["waited_seconds"] < 30
    assert actions(pair) == []
    assert pair.active == "ns1"
    assert "ns1 recovered, no failover" in report_text(slack_sink)


# wrong_data: test_failed_shutdown_forces_the_failover_and_checks_the_process breaks the server that way.
@pytest.mark.parametrize("how", ["servfail", "slow"])
def test_active_failing_for_the_whole_wait_is_failed_over(dns_env, run_failover, slack_sink, how: str) -> None:
    pair = dns_env(wait_minutes=0.02)
    pair.break_server("ns1", how, seconds=60)
    run = run_failover()
    assert run.state == "success"
    decision, _ = xcom(run, "decide_failover")
    assert (decision["action"], decision["active_state"]) == ("wait", "failing")
    wait, _ = xcom(run, "wait_for_recovery")
    assert wait["status"] == "timeout"
    probed, _ = xcom(run, "probe_dns_servers")
    assert probed["active_log"]["source"].startswith("file ")
    assert len(probed["active_log"]["lines"]) <= 20
    if how == "servfail":
        # The SERVFAIL server logged the probe's queries; a hung one logs nothing while it hangs.
        assert any("query[A]" in line for line in probed["active_log"]["lines"])
        assert "Recent log of ns1" in report_text(slack_sink)
    shutdown, _ = xcom(run, "shut_down_active")
    assert shutdown["final"]["action"] == "failover_now"
    assert actions(pair) == [SHUTDOWN_NS1, FAILOVER_NS2]
    assert pair.active == "ns2"
    assert not pair.running("ns1")
    verified, _ = xcom(run, "verify_failover")
    assert verified["verified"] is True


def test_failed_shutdown_forces_the_failover_and_checks_the_process(dns_env, run_failover, slack_sink) -> None:
    pair = dns_env(wait_minutes=0)
    pair.break_server("ns1", "wrong_data")
    pair.fault("shutdown", "fail")
    run = run_failover()
    assert run.state == "success"
    shutdown, _ = xcom(run, "shut_down_active")
    assert (shutdown["acted"], shutdown["ok"]) == (True, False)
    assert shutdown["process_check"]["state"] == "failing"
    moved, _ = xcom(run, "fail_over_to_standby")
    assert moved["forced"] is True
    assert actions(pair) == [SHUTDOWN_NS1, FORCED_NS2]
    assert pair.active == "ns2"
    text = report_text(slack_sink)
    assert "(forced)" in text
    assert "DNS process still failing" in text


def test_broken_standby_pages_and_changes_nothing(dns_env, run_failover, slack_sink) -> None:
    pair = dns_env()
    pair.break_server("ns1", "stopped")
    pair.break_server("ns2", "servfail")
    run = run_failover()
    assert run.state == "success"
    decision, _ = xcom(run, "decide_failover")
    assert (decision["action"], decision["standby_state"]) == ("page", "failing")
    assert actions(pair) == []
    assert pair.active == "ns1"
    text = report_text(slack_sink, "urgent")
    assert "no failover" in text
    assert ":rotating_light:" in text


def test_dry_run_changes_nothing(dns_env, run_failover, slack_sink) -> None:
    pair = dns_env()
    pair.break_server("ns1", "stopped")
    run = run_failover({"alert": alert(), "dry_run": True})
    assert run.state == "success"
    shutdown, _ = xcom(run, "shut_down_active")
    assert shutdown["outcome"] == "dry_run"
    assert actions(pair) == []
    assert pair.active == "ns1"
    assert "[dry run]" in report_text(slack_sink)


def test_maintenance_window_changes_nothing(dns_env, run_failover, slack_sink) -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    window = {
        "days": ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=1)).strftime("%H:%M"),
        "timezone": "UTC",
    }
    pair = dns_env(respect_maintenance_window=True, maintenance_window=window)
    pair.break_server("ns1", "stopped")
    run = run_failover()
    assert run.state == "success"
    shutdown, _ = xcom(run, "shut_down_active")
    assert shutdown["outcome"] == "gate_refused"
    assert shutdown["gate"]["check"] == "time_policy"
    assert actions(pair) == []
    assert pair.active == "ns1"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        pytest.param(
            {"servers": {"ns1": {"address": "not an address!", "port": 53}, "ns2": {"address": "127.0.0.2"}}},
            "must be an IP address or a host name",
            id="bad-server-address",
        ),
        pytest.param(
            {"command": {"argv": ["/nonexistent/dnsTool"], "timeout_seconds": 5}},
            "not found or not executable",
            id="provider-command-missing",
        ),
        pytest.param(
            {"queries": [{"name": "bad..name.test", "type": "A", "expect": ["192.0.2.1"]}]},
            "empty label",
            id="invalid-dns-name",
        ),
    ],
)
def test_bad_input_fails_at_once_and_changes_nothing(dns_env, run_failover, slack_sink, override, message) -> None:
    pair = dns_env(**override)
    pair.break_server("ns1", "stopped")
    run = run_failover()
    assert run.state == "failed"
    _, state = xcom(run, "resolve_settings")
    assert state == "failed"
    assert pair.calls() == []
    assert pair.active == "ns1"
    failures = " ".join(m["text"] for m in slack_sink.messages())
    assert "resolve_settings" in failures
    assert message in failures
