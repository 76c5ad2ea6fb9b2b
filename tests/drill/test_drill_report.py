"""The drill's figures and verdict, from a timeline (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.drill import report

FAULT = 1_000_000.0


def _event(kind: str, offset: float, summary: str = "", **data: Any) -> dict[str, Any]:
    return {"kind": kind, "at": FAULT + offset, "actor": "toilless", "summary": summary, "data": data}


TIMELINE = [
    _event("alert_received", 6.0, "AppDown firing"),
    _event("runbook_started", 6.5, "app_down"),
    _event("message_sent", 20.0, "App down: web, escalating to every role", channel="ops"),
    _event("acknowledged", 22.0, "drill-oncall"),
    _event("gate_verdict", 30.0, "allowed", allowed=True, action="rollback the Deployment", target="shop/web"),
    _event("runbook_finished", 70.0, "reported: recovered (success)"),
]


def test_figures_measure_from_the_fault() -> None:
    found = report.figures(FAULT, TIMELINE, FAULT + 55.0)
    assert (found.detect, found.acknowledge, found.first_mitigation, found.recovery) == (6.0, 22.0, 30.0, 55.0)
    assert found.actions == {"rollback the Deployment": 1}
    assert found.people_paged == 0
    assert found.escalation_sent
    assert report.verdict({"rollbacks": 1, "escalation_sent": True, "max_people_paged": 1}, found, 120) == []


def test_a_second_rollback_and_a_page_are_reported() -> None:
    events = [
        *TIMELINE,
        _event("gate_verdict", 40.0, "allowed", allowed=True, action="rollback the Deployment", target="shop/web"),
        _event("message_sent", 45.0, "Paging", channel="urgent"),
    ]
    found = report.figures(FAULT, events, FAULT + 55.0)
    problems = report.verdict({"rollbacks": 1, "max_people_paged": 0}, found, 120)
    assert "2 rollbacks, expected 1" in problems
    assert "1 people paged, at most 0 expected" in problems
    assert "done twice: rollback the Deployment shop/web (2 times)" in problems


def test_not_recovered_fails_with_the_timeline_where_it_stopped() -> None:
    stopped = TIMELINE[:3]
    found = report.figures(FAULT, stopped, None)
    problems = report.verdict({}, found, 120)
    assert problems == ["not recovered within the budget of 120s"]
    text = report.markdown(
        scenario="bad_deploy",
        description="d",
        fault_at=FAULT,
        fault="deployed shop/web:2.0.0-qa",
        incident_id="abc",
        events=stopped,
        found=found,
        problems=problems,
        load_average="1.00",
    )
    assert "FAILED" in text
    assert "not recovered within the budget of 120s" in text
    assert text.rstrip().splitlines()[-1].startswith("| 20.0 | message_sent |")  # the last thing that happened


def test_action_without_allowed_verdict_is_outside_policy() -> None:
    found = report.figures(FAULT, [_event("action", 10.0, "kubectl rollout undo")], FAULT + 20)
    assert found.outside_policy == ["action without an allowed gate verdict: kubectl rollout undo"]


def test_timeline_text_stays_in_its_cell() -> None:
    found = report.figures(FAULT, [], None)
    text = report.markdown(
        scenario="s",
        description="d",
        fault_at=FAULT,
        fault="f",
        incident_id=None,
        events=[_event("message_sent", 1.0, "a | b\nc")],
        found=found,
        problems=[],
        load_average="1",
    )
    assert "a \\| b c" in text


def test_a_page_alone_is_not_the_escalation() -> None:
    found = report.figures(FAULT, [_event("message_sent", 5.0, "Paging", channel="urgent")], None)
    assert (found.escalation_sent, found.people_paged) == (False, 1)


def test_timeline_chart_is_a_png(tmp_path: Any) -> None:
    from sandbox.drill.chart import write_chart

    path = write_chart(
        tmp_path / "c.png", scenario="s", fault_at=FAULT, events=TIMELINE, found=report.figures(FAULT, TIMELINE, None)
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_recovery_row_sits_in_time_order() -> None:
    found = report.figures(FAULT, TIMELINE, FAULT + 55.0)
    text = report.markdown(
        scenario="s",
        description="d",
        fault_at=FAULT,
        fault="f",
        incident_id="i",
        events=TIMELINE,
        found=found,
        problems=[],
        load_average="1",
    )
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    offsets = [float(row.split("|")[1]) for row in rows]
    assert offsets == sorted(offsets)
    assert any("recovery verified" in row for row in rows)


# dns_failover checks the gate for "fail over" on the active server twice in one procedure: before shutting it down and
# before switching to the standby. The calls themselves (action events) are two different actions, each done once.
DNS_FAILOVER = [
    _event("alert_received", 4.0, "DNSServerNotAnswering firing"),
    _event("gate_verdict", 20.0, "allowed", allowed=True, action="fail over", target="ns1"),
    _event("action", 21.0, "shut down on ns1: done", action="shut down", target="ns1", result="done"),
    _event("gate_verdict", 30.0, "allowed", allowed=True, action="fail over", target="ns1"),
    _event("action", 31.0, "failover on ns2: done", action="failover", target="ns2", result="done"),
    _event("message_sent", 40.0, "DNS failover: ns1 -> ns2", channel="networking"),
]


def test_two_gate_checks_of_one_procedure_are_not_done_twice() -> None:
    found = report.figures(FAULT, DNS_FAILOVER, FAULT + 35.0)
    assert found.done_twice == []
    assert found.done == {"shut down": 1, "failover": 1}
    assert report.verdict({"actions_done": {"shut down": 1, "failover": 1}}, found, 120) == []


def test_an_action_done_twice_on_the_same_target_is_reported() -> None:
    events = [
        *DNS_FAILOVER,
        _event("gate_verdict", 50.0, "allowed", allowed=True, action="fail over", target="ns1"),
        _event("action", 51.0, "failover on ns2: done", action="failover", target="ns2", result="done"),
    ]
    found = report.figures(FAULT, events, FAULT + 35.0)
    assert found.done_twice == ["failover ns2 (2 times)"]
    problems = report.verdict({"actions_done": {"failover": 1}}, found, 120)
    assert "2 'failover' actions done, expected 1" in problems
    assert "done twice: failover ns2 (2 times)" in problems


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        pytest.param("done", [], id="done"),
        pytest.param("not done", ["0 'resume WAL replay' actions done, expected 1"], id="not-done-does-not-count"),
        pytest.param("failed", ["0 'resume WAL replay' actions done, expected 1"], id="failed-does-not-count"),
    ],
)
def test_actions_done_counts_only_calls_that_were_done(result: str, expected: list[str]) -> None:
    events = [
        _event("gate_verdict", 20.0, "allowed", allowed=True, action="resume WAL replay", target="replica-1"),
        _event("action", 21.0, "resume", action="resume WAL replay", target="replica-1", result=result),
    ]
    found = report.figures(FAULT, events, FAULT + 30.0)
    assert report.verdict({"actions_done": {"resume WAL replay": 1}}, found, 120) == expected


NOISE_TIMELINE = [
    _event("alert_received", 5.0, "Service5xx firing"),
    _event("runbook_started", 5.2, "triage_alert"),
    _event("gate_verdict", 40.0, "allowed", allowed=True, action="silence", target="Service5xx"),
    _event("action", 40.5, "silence 60 min on Service5xx: done"),
    _event("message_sent", 41.0, "Triage: noise", channel="non_urgent"),
    _event("runbook_finished", 41.2, "reported: Triage: noise (ok)"),
]


@pytest.mark.parametrize(
    ("silenced", "runbook_runs", "expected"),
    [
        pytest.param(True, 0, [], id="silenced-no-runbook-passes"),
        pytest.param(False, 0, ["no active silence in Alertmanager for the alert"], id="not-silenced-fails"),
        pytest.param(True, 1, ["1 runbook runs, expected 0"], id="runbook-ran-fails"),
        pytest.param(None, None, ["silence not checked", "runbook runs not counted"], id="unknown-fails"),
    ],
)
def test_noise_drill_needs_a_silence_no_runbook_and_no_recovery(
    silenced: bool | None, runbook_runs: int | None, expected: list[str]
) -> None:
    found = report.figures(FAULT, NOISE_TIMELINE, None)
    found.silenced, found.runbook_runs = silenced, runbook_runs
    expect = {"silenced": True, "runbook_runs": 0, "max_people_paged": 0}
    # No outage: nothing to recover, so no "not recovered" problem; the run must have reported.
    assert report.verdict(expect, found, 120, outage=False) == expected
    assert found.people_paged == 0
    assert found.first_mitigation == 40.0


def test_noise_drill_whose_triage_never_reported_fails() -> None:
    found = report.figures(FAULT, NOISE_TIMELINE[:2], None)
    found.silenced, found.runbook_runs = False, 0
    problems = report.verdict({"silenced": True, "runbook_runs": 0}, found, 120, outage=False)
    assert "the incident's run did not report (no runbook_finished event) within the budget of 120s" in problems


def test_figures_report_whether_the_run_reported() -> None:
    assert report.figures(FAULT, NOISE_TIMELINE, None).reported_at == pytest.approx(41.2)
    assert report.figures(FAULT, NOISE_TIMELINE[:2], None).reported_at is None


def test_summary_row_has_every_figure_and_the_verdict() -> None:
    found = report.figures(FAULT, TIMELINE, FAULT + 55.0)
    row = report.summary_row("bad_deploy", found, problems=[], budget=120)
    assert row["benchmark"] == "drill"
    assert row["metric"] == "bad_deploy"
    assert row["value"] == (
        "detect 6.0 s; acknowledge 22.0 s; first action 30.0 s; MTTR 55.0 s; "
        "people paged 0; done twice 0; outside policy 0"
    )
    assert row["goal"] == "recovered within 120 s, expectations held"
    assert row["met"] is True


def test_summary_row_of_a_failed_drill_names_why() -> None:
    found = report.figures(FAULT, TIMELINE[:3], None)
    row = report.summary_row("bad_deploy", found, problems=["not recovered within the budget of 120s"], budget=120)
    assert row["met"] is False
    assert "MTTR —" in row["value"]
    assert row["notes"] == "FAILED: not recovered within the budget of 120s"


def test_summary_row_of_a_drill_without_outage_states_the_report_time() -> None:
    found = report.figures(FAULT, NOISE_TIMELINE, None)
    found.silenced, found.runbook_runs = True, 0
    row = report.summary_row("noisy_5xx", found, problems=[], budget=120, outage=False)
    assert "MTTR n/a (reported 41.2 s)" in row["value"]
    assert row["goal"] == "reported within 120 s, expectations held"
    assert row["notes"] == "silenced: yes; runbook runs: 0"


def test_markdown_of_a_noise_drill_shows_the_silence_the_runbook_runs_and_the_report_time() -> None:
    found = report.figures(FAULT, NOISE_TIMELINE, None)
    found.silenced, found.runbook_runs = True, 0
    text = report.markdown(
        scenario="noisy_5xx",
        description="d",
        fault_at=FAULT,
        fault="one 500",
        incident_id="abc",
        events=NOISE_TIMELINE,
        found=found,
        problems=[],
        load_average="1 / 1 / 1",
    )
    assert "| silenced in Alertmanager | yes |" in text
    assert "| runbook runs | 0 |" in text
    assert "| time to the run's report (runbook_finished) | 41.2 s |" in text
    assert "PASSED" in text
