"""The weekly handoff document, from incidents and their timelines. Pure: no clock, no I/O; the same input gives
the same document byte for byte (a test holds a hand-checked one).

The on-call log follows the seed teams' template (SOPS.md "Alert handling": date/time, alert, troubleshooting,
resolution), one entry per incident open at any moment of the week. Recurring alerts are ranked by count, then time
spent (opened to resolved, or to the end of the week if still open): the toil candidates, each with its runbook or
a suggestion to write one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from toilless.incidents import events as ev
from toilless.incidents.markdown import md

SEVERITIES = ("P0", "P1", "P2", "P3")
#: Entries written in full in the on-call log; the rest are counted (a storm week must still fit one document).
MAX_LOG_ENTRIES = 300


@dataclass(frozen=True)
class Recurring:
    alertname: str
    count: int
    minutes: float
    mean_ack_minutes: float | None
    runbooks: tuple[str, ...]

    @property
    def suggestion(self) -> str:
        if self.runbooks:
            return "runbook: " + ", ".join(self.runbooks)
        return "no runbook: write a SOP for it" if self.count >= 3 else "no runbook"


@dataclass
class Handoff:
    week_start: datetime
    week_end: datetime
    incidents: int = 0
    by_severity: dict[str, int] = field(default_factory=dict)
    recurring: list[Recurring] = field(default_factory=list)
    open_incidents: list[dict[str, Any]] = field(default_factory=list)
    markdown: str = ""

    def summary(self) -> dict[str, Any]:
        return {
            "week_start": self.week_start.isoformat(),
            "week_end": self.week_end.isoformat(),
            "incidents": self.incidents,
            "by_severity": self.by_severity,
            "open": len(self.open_incidents),
            "top_recurring": [(item.alertname, item.count) for item in self.recurring[:5]],
        }


def clock(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC") if epoch is not None else "—"


def minutes(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / 60:.1f} h" if value >= 120 else f"{value:.0f} min"


def rank_recurring(incidents: Sequence[Mapping[str, Any]], week_end: float) -> list[Recurring]:
    """Alerts by count, then time spent, then name."""
    spent: dict[str, float] = {}
    counts: Counter[str] = Counter()
    acks: dict[str, list[float]] = {}
    runbooks: dict[str, set[str]] = {}
    for incident in incidents:
        name = str(incident.get("alertname") or "unknown")
        counts[name] += 1
        end = incident.get("resolved_at") or week_end
        spent[name] = spent.get(name, 0.0) + max(0.0, (end - incident["opened_at"]) / 60)
        if incident.get("acknowledged_at") is not None:
            acks.setdefault(name, []).append((incident["acknowledged_at"] - incident["opened_at"]) / 60)
        if incident.get("dag_id"):
            runbooks.setdefault(name, set()).add(str(incident["dag_id"]))
    ranked = [
        Recurring(
            name,
            count,
            round(spent[name], 1),
            round(sum(acks[name]) / len(acks[name]), 1) if acks.get(name) else None,
            tuple(sorted(runbooks.get(name, ()))),
        )
        for name, count in counts.items()
    ]
    return sorted(ranked, key=lambda item: (-item.count, -item.minutes, item.alertname))


def log_entry(incident: Mapping[str, Any], timeline: Sequence[Mapping[str, Any]]) -> list[str]:
    """One on-call log entry: date/time, alert, troubleshooting, resolution."""
    kinds = Counter(item["kind"] for item in timeline)
    ack = (
        f"acknowledged {clock(incident['acknowledged_at'])} by {md(incident.get('acknowledged_by'), 100)}"
        if incident.get("acknowledged_at") is not None
        else "never acknowledged"
    )
    resolved = f"resolved {clock(incident['resolved_at'])}" if incident.get("resolved_at") is not None else "still open"
    steps = []
    if incident.get("dag_id"):
        steps.append(f"runbook {md(incident['dag_id'], 100)}")
    for kind, label in (
        (ev.GATE_VERDICT, "gate verdict"),
        (ev.APPROVAL, "approval"),
        (ev.ACTION, "action"),
        (ev.ESCALATED, "escalation"),
        (ev.MESSAGE_SENT, "message"),
    ):
        if kinds[kind]:
            steps.append(f"{kinds[kind]} {label}{'s' if kinds[kind] > 1 else ''}")
    worked = [item for item in timeline if item["kind"] == ev.ACTION]
    if incident.get("resolved_at") is None:
        resolution = "open at handoff"
    elif worked:
        resolution = "; ".join(md(item["summary"], 150) for item in worked[-3:])
    else:
        resolution = "cleared without a recorded action"
    return [
        f"### {clock(incident['opened_at'])} · {md(incident.get('severity'), 4)} {md(incident.get('alertname'))}",
        f"- **Date/time:** opened {clock(incident['opened_at'])}; {ack}; {resolved}",
        f"- **Alert:** {md(incident.get('alertname'))} on {md(incident.get('service') or incident.get('target') or 'unknown', 150)}"
        f" ({md(incident.get('environment') or 'unknown env', 40)}), incident `{md(incident['incident_id'], 64)}`",
        f"- **Troubleshooting:** {', '.join(steps) or 'nothing recorded'}",
        f"- **Resolution:** {resolution}",
        "",
    ]


def build(
    incidents: Sequence[Mapping[str, Any]],
    timelines: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    week_start: datetime,
    week_end: datetime,
    open_incidents: Sequence[Mapping[str, Any]] = (),
    ahead: Sequence[str] = (),
    selfcheck: Sequence[tuple[str, bool, str]] = (),
    top: int = 10,
) -> Handoff:
    """The handoff of the week [week_start, week_end).

    :param incidents: incidents open at any moment of the week (store.incidents_between), oldest first
    :param ahead: silences and maintenance windows of the coming week, already described
    :param selfcheck: ``(check, ok, detail)`` of the monitoring path
    """
    end = week_end.timestamp()
    handoff = Handoff(week_start, week_end, incidents=len(incidents))
    handoff.by_severity = {code: sum(1 for item in incidents if item.get("severity") == code) for code in SEVERITIES}
    handoff.recurring = rank_recurring(incidents, end)
    handoff.open_incidents = [dict(item) for item in open_incidents]
    acked = [
        item["acknowledged_at"] - item["opened_at"] for item in incidents if item.get("acknowledged_at") is not None
    ]
    done = [item["resolved_at"] - item["opened_at"] for item in incidents if item.get("resolved_at") is not None]
    lines = [
        f"# On-call handoff: week of {week_start:%Y-%m-%d} to {week_end:%Y-%m-%d} (UTC)",
        "",
        "## Summary",
        f"- Incidents: {len(incidents)} ("
        + ", ".join(f"{code}: {handoff.by_severity[code]}" for code in SEVERITIES)
        + ")",
        f"- Acknowledged: {len(acked)} · median time to acknowledge: {minutes(_median(acked) / 60 if acked else None)}",
        f"- Resolved: {len(done)} · median time to resolve: {minutes(_median(done) / 60 if done else None)}",
        f"- Open at handoff: {len(open_incidents)}",
        "",
        "## Monitoring self-check",
    ]
    lines += [f"- {'✅' if ok else '❌'} {md(name, 80)}: {md(detail, 300)}" for name, ok, detail in selfcheck] or [
        "- not run"
    ]
    lines += [
        "",
        "## Recurring alerts (toil candidates)",
        "| Alert | Count | Time spent | Mean time to ack | SOP |",
        "|---|---|---|---|---|",
    ]
    for item in handoff.recurring[:top]:
        lines.append(
            f"| {md(item.alertname)} | {item.count} | {minutes(item.minutes)} | {minutes(item.mean_ack_minutes)} "
            f"| {md(item.suggestion, 200)} |"
        )
    if len(handoff.recurring) > top:
        lines.append(f"| … {len(handoff.recurring) - top} more alert(s) | | | | |")
    lines += ["", "## Open incidents"]
    lines += [
        f"- {md(item.get('severity'), 4)} {md(item.get('alertname'))} since {clock(item['opened_at'])}, "
        f"{'acknowledged by ' + md(item.get('acknowledged_by'), 100) if item.get('acknowledged_at') is not None else 'NOT acknowledged'}"
        f" (`{md(item['incident_id'], 64)}`)"
        for item in open_incidents[:50]
    ] or ["- none"]
    lines += ["", "## Silences and maintenance ahead"]
    lines += [f"- {md(text, 600)}" for text in ahead] or ["- none"]
    lines += ["", "## On-call log", ""]
    for incident in incidents[:MAX_LOG_ENTRIES]:
        lines += log_entry(incident, timelines.get(incident["incident_id"], ()))
    if len(incidents) > MAX_LOG_ENTRIES:
        lines += [f"_… and {len(incidents) - MAX_LOG_ENTRIES} more incident(s); see the incident record._", ""]
    handoff.markdown = "\n".join(lines).rstrip() + "\n"
    return handoff


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
