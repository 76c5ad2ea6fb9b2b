"""Figures and the Markdown report of one drill, from the incident timeline (pure: no I/O, no Airflow)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

#: Slack channels whose messages page a person (app_down's escalation.page_channel, the approval channel).
PAGE_CHANNELS = frozenset({"urgent"})


@dataclass
class Figures:
    detect: float | None = None  # fault -> alert received by the intake
    acknowledge: float | None = None  # fault -> first acknowledged event
    first_mitigation: float | None = None  # fault -> first action the gate allowed
    recovery: float | None = None  # fault -> verified recovery (MTTR)
    people_paged: int = 0
    escalation_sent: bool = False
    channels_told: list[str] = field(default_factory=list)  # channels any message of the incident went to
    actions: dict[str, int] = field(default_factory=dict)  # allowed actions by name
    done: dict[str, int] = field(default_factory=dict)  # irreversible calls recorded done (action events) by name
    done_twice: list[str] = field(default_factory=list)
    outside_policy: list[str] = field(default_factory=list)
    reported_at: float | None = None  # fault -> the incident's run reported (its runbook_finished event)
    # Read by the drill from the systems themselves, not from the timeline (None: not checked):
    silenced: bool | None = None  # an active silence for the alert in Alertmanager (API v2)
    runbook_runs: int | None = None  # runs of the scenario's runbook DAG started since the fault

    def count(self, word: str) -> int:
        """Allowed actions whose name has ``word`` (the gate names them in words: "rollback the Deployment")."""
        return sum(times for action, times in self.actions.items() if word in action.lower())


def _data(event: dict[str, Any]) -> dict[str, Any]:
    data = event.get("data")
    return data if isinstance(data, dict) else {}


def figures(fault_at: float, events: list[dict[str, Any]], recovered_at: float | None) -> Figures:
    """What the drill measures, from the timeline events (``kind``, ``at`` epoch seconds, ``summary``, ``data``)."""
    ordered = sorted(events, key=lambda event: float(event["at"]))
    result = Figures(recovery=(recovered_at - fault_at) if recovered_at is not None else None)

    def first(kind: str, predicate: Any = None) -> float | None:
        for event in ordered:
            if event["kind"] == kind and (predicate is None or predicate(event)):
                return float(event["at"]) - fault_at
        return None

    result.detect = first("alert_received")
    result.acknowledge = first("acknowledged")
    result.reported_at = first("runbook_finished")
    allowed = [event for event in ordered if event["kind"] == "gate_verdict" and _data(event).get("allowed")]
    actions = [event for event in ordered if event["kind"] == "action"]
    if allowed or actions:
        result.first_mitigation = min(float(event["at"]) for event in allowed + actions) - fault_at
    done = [event for event in actions if _data(event).get("result") == "done"]
    # Where the SOP records its calls (action events), those are what was done: a SOP may check the gate for one
    # action at two steps of one procedure (dns_failover before the shutdown and before the switch). Otherwise the
    # allowed verdicts stand for the calls.
    counted = Counter(f"{_data(e).get('action')} {_data(e).get('target')}" for e in (done if actions else allowed))
    result.actions = dict(Counter(str(_data(e).get("action")) for e in allowed))
    result.done = dict(Counter(str(_data(e).get("action")) for e in done))
    result.done_twice = sorted(f"{what} ({n} times)" for what, n in counted.items() if n > 1)
    # An action recorded by a SOP without any allowed gate verdict before it went around the policy.
    for event in actions:
        if not any(float(v["at"]) <= float(event["at"]) for v in allowed):
            result.outside_policy.append(f"action without an allowed gate verdict: {event.get('summary', '')}")
    messages = [event for event in ordered if event["kind"] == "message_sent"]
    paged = [event for event in messages if _data(event).get("channel") in PAGE_CHANNELS]
    result.people_paged = len(paged) + sum(1 for event in ordered if event["kind"] == "escalated")
    # Telling people at once is the escalation (app_down's escalate_outage posts to every role's channel).
    result.escalation_sent = any(_data(event).get("channel") not in PAGE_CHANNELS for event in messages)
    result.channels_told = sorted({str(_data(event)["channel"]) for event in messages if _data(event).get("channel")})
    return result


def verdict(scenario_expect: dict[str, Any], found: Figures, budget: float, *, outage: bool = True) -> list[str]:
    """Why the drill failed (empty: passed): not recovered in budget, or an expectation not met.

    Without an ``outage`` (the noisy single 5xx) there is nothing to recover: the incident's run must have reported
    within the budget instead.
    """
    problems: list[str] = []
    if not outage:
        if found.reported_at is None or found.reported_at > budget:
            problems.append(
                f"the incident's run did not report (no runbook_finished event) within the budget of {budget:.0f}s"
            )
    elif found.recovery is None:
        problems.append(f"not recovered within the budget of {budget:.0f}s")
    elif found.recovery > budget:
        problems.append(f"recovered after {found.recovery:.1f}s, over the budget of {budget:.0f}s")
    if "silenced" in scenario_expect:
        if found.silenced is None:
            problems.append("silence not checked")
        elif found.silenced != bool(scenario_expect["silenced"]):
            problems.append(
                "no active silence in Alertmanager for the alert"
                if scenario_expect["silenced"]
                else "the alert was silenced in Alertmanager"
            )
    if "runbook_runs" in scenario_expect:
        if found.runbook_runs is None:
            problems.append("runbook runs not counted")
        elif found.runbook_runs != int(scenario_expect["runbook_runs"]):
            problems.append(f"{found.runbook_runs} runbook runs, expected {scenario_expect['runbook_runs']}")
    if "rollbacks" in scenario_expect and (rollbacks := found.count("rollback")) != int(scenario_expect["rollbacks"]):
        problems.append(f"{rollbacks} rollbacks, expected {scenario_expect['rollbacks']}")
    for name, times in dict(scenario_expect.get("actions_done") or {}).items():
        if (done := found.done.get(str(name), 0)) != int(times):
            problems.append(f"{done} {str(name)!r} actions done, expected {times}")
    # {word: n}: exactly n allowed actions whose name has the word ("restart", "grow storage").
    for word, times in (scenario_expect.get("actions") or {}).items():
        if (done := found.count(str(word).lower())) != int(times):
            problems.append(f"{done} allowed '{word}' actions, expected {times}")
    for channel in scenario_expect.get("told_channels") or []:
        if str(channel) not in found.channels_told:
            problems.append(f"nobody told in #{channel} (messages went to: {', '.join(found.channels_told) or 'none'})")
    if scenario_expect.get("escalation_sent") and not found.escalation_sent:
        problems.append("no escalation message in the timeline")
    if "max_people_paged" in scenario_expect and found.people_paged > int(scenario_expect["max_people_paged"]):
        problems.append(f"{found.people_paged} people paged, at most {scenario_expect['max_people_paged']} expected")
    problems += [f"done twice: {item}" for item in found.done_twice]
    problems += [f"outside policy: {item}" for item in found.outside_policy]
    return problems


def _yes_no(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "not checked"}[value]


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def _cell(text: Any) -> str:
    # Timeline text comes from alerts and tasks: keep it in its table cell.
    return str(text).replace("|", "\\|").replace("\n", " ").replace("`", "'")[:200]


def markdown(
    *,
    scenario: str,
    description: str,
    fault_at: float,
    fault: str,
    incident_id: str | None,
    events: list[dict[str, Any]],
    found: Figures,
    problems: list[str],
    load_average: str,
    recovered_what: str = "app healthy",
) -> str:
    started = datetime.fromtimestamp(fault_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [
        f"# Drill `{scenario}`: {'PASSED' if not problems else 'FAILED'}",
        "",
        _cell(description),
        "",
        f"Fault injected {started}: {_cell(fault)}. Incident `{incident_id or 'none'}`. Load average: {load_average}.",
        "",
        "| measure | from the fault |",
        "|---|---|",
        f"| time to detect (alert received) | {_seconds(found.detect)} |",
        f"| time to acknowledge | {_seconds(found.acknowledge)} |",
        f"| time to first mitigating action | {_seconds(found.first_mitigation)} |",
        f"| time to verified recovery (MTTR) | {_seconds(found.recovery)} |",
        f"| time to the run's report (runbook_finished) | {_seconds(found.reported_at)} |",
        f"| people paged | {found.people_paged} |",
        f"| silenced in Alertmanager | {_yes_no(found.silenced)} |",
        f"| runbook runs | {'not counted' if found.runbook_runs is None else found.runbook_runs} |",
        f"| actions allowed by the gate | {', '.join(f'{k} x{v}' for k, v in sorted(found.actions.items())) or 'none'} |",
        f"| actions done (recorded calls) | {', '.join(f'{k} x{v}' for k, v in sorted(found.done.items())) or 'none'} |",
        f"| done twice | {', '.join(found.done_twice) or 'nothing'} |",
        f"| outside policy | {', '.join(found.outside_policy) or 'nothing'} |",
        "",
    ]
    if problems:
        lines += ["## Why it failed", ""] + [f"- {_cell(problem)}" for problem in problems] + [""]
    lines += [
        "## Timeline",
        "",
        f"![timeline]({scenario}.png)",
        "",
        "| +s | event | by | summary |",
        "|---|---|---|---|",
    ]
    rows: list[tuple[float, str, str, str]] = [(0.0, "fault injected", "drill", fault)]
    for event in events:
        summary = str(event.get("summary", ""))
        data = _data(event)
        if data.get("channel"):
            summary += f" (#{data['channel']})"
        if event["kind"] == "gate_verdict":
            summary += (
                f" [{data.get('action')} {data.get('target')}: {'allowed' if data.get('allowed') else 'refused'}]"
            )
        rows.append((float(event["at"]) - fault_at, str(event["kind"]), str(event.get("actor", "")), summary))
    if found.recovery is not None:
        rows.append((found.recovery, "recovery verified", "drill", f"{recovered_what} (the drill's own check)"))
    for offset, kind, actor, summary in sorted(rows, key=lambda row: row[0]):
        lines.append(f"| {offset:.1f} | {_cell(kind)} | {_cell(actor)} | {_cell(summary)} |")
    return "\n".join(lines) + "\n"


def summary_row(
    scenario: str, found: Figures, *, problems: list[str], budget: float, outage: bool = True
) -> dict[str, Any]:
    """One row of the summary table in benchmarks/results.md (benchmarks/bench_drill.py): the drill's figures."""
    mttr = _seconds(found.recovery) if outage else f"n/a (reported {_seconds(found.reported_at)})"
    value = (
        f"detect {_seconds(found.detect)}; acknowledge {_seconds(found.acknowledge)}; "
        f"first action {_seconds(found.first_mitigation)}; MTTR {mttr}; people paged {found.people_paged}; "
        f"done twice {len(found.done_twice)}; outside policy {len(found.outside_policy)}"
    )
    if problems:
        notes = "FAILED: " + "; ".join(problems)
    else:
        notes = "; ".join(
            part
            for part in (
                f"silenced: {_yes_no(found.silenced)}" if found.silenced is not None else "",
                f"runbook runs: {found.runbook_runs}" if found.runbook_runs is not None else "",
            )
            if part
        )
    return {
        "benchmark": "drill",
        "metric": scenario,
        "value": value,
        "goal": f"{'recovered' if outage else 'reported'} within {budget:.0f} s, expectations held",
        "met": not problems,
        "notes": notes,
    }
