"""The post-mortem draft of one incident, from its timeline (SOPS.md: stakeholders, a timeline of human and system
events, impact, resolution, action plan). Pure: plain data in, Markdown out.

Every value from outside (alert names, labels, summaries, actors) goes through :func:`md` before it reaches the
Markdown: one line, no HTML, no table breaks, no mentions or auto-links, bounded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from toilless.incidents.events import (
    ACTION,
    ALERT_RECEIVED,
    ESCALATED,
    GATE_VERDICT,
    HUMAN_KINDS,
    MESSAGE_SENT,
    RUNBOOK_FINISHED,
)
from toilless.incidents.markdown import md

#: Timeline rows shown in one draft (GitHub bodies hold 65,536 characters).
MAX_TIMELINE_ROWS = 200


def marker(incident_id: str) -> str:
    """The line that makes a draft findable: one issue per incident."""
    return f"<!-- toilless-postmortem:{incident_id} -->"


def stamp(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if epoch is not None else "—"


def minutes_between(start: float | None, end: float | None) -> str:
    if start is None or end is None:
        return "—"
    return f"{(end - start) / 60:.0f} min"


def render(
    incident: Mapping[str, Any], timeline: Sequence[Mapping[str, Any]], *, recurring: int = 0, epic_issue: int = 0
) -> tuple[str, str]:
    """(title, body) of the draft. ``recurring``: how often this alert fired in the last 30 days."""
    incident_id = str(incident["incident_id"])
    alertname = str(incident.get("alertname") or "unknown alert")
    title = f"Post-mortem: {incident.get('severity', '')} {alertname} ({stamp(incident.get('opened_at'))[:10]})"
    received = next((item for item in timeline if item["kind"] == ALERT_RECEIVED), None)
    starts_at = (received or {}).get("data", {}).get("starts_at") if received else None
    told = sorted(
        {
            str(item["data"].get("channel") or item["data"].get("to") or "")
            for item in timeline
            if item["kind"] in (MESSAGE_SENT, ESCALATED)
        }
        - {""}
    )
    acted = sorted({str(item["actor"]) for item in timeline if item["kind"] in HUMAN_KINDS})
    worked = [item for item in timeline if item["kind"] in (ACTION, RUNBOOK_FINISHED)] + [
        item for item in timeline if item["kind"] == GATE_VERDICT and item["data"].get("allowed")
    ]
    lines = [
        marker(incident_id),
        f"Part of #{epic_issue}" if epic_issue else "",
        f"# {md(title, 250)}",
        "",
        "_Drafted by Toilless from the incident timeline. Edit what the facts cannot say._",
        "",
        "## Summary",
        f"- **Incident:** `{md(incident_id, 64)}`",
        f"- **Alert:** {md(alertname)} · **Severity:** {md(incident.get('severity'), 4)}",
        f"- **Service:** {md(incident.get('service') or 'unknown')} · **Environment:** "
        f"{md(incident.get('environment') or 'unknown', 50)}",
        f"- **Runbook:** {md(incident.get('dag_id') or 'none')} {md(incident.get('run_id') or '', 250)}".rstrip(),
        f"- **Opened:** {stamp(incident.get('opened_at'))} · **Acknowledged:** {stamp(incident.get('acknowledged_at'))}"
        f" by {md(incident.get('acknowledged_by') or 'nobody', 100)} · **Resolved:** {stamp(incident.get('resolved_at'))}",
        f"- **Time to acknowledge:** {minutes_between(incident.get('opened_at'), incident.get('acknowledged_at'))} · "
        f"**Time to resolve:** {minutes_between(incident.get('opened_at'), incident.get('resolved_at'))}",
        "",
        "## Stakeholders",
        f"- **Told:** {', '.join(md(name, 100) for name in told) or 'nobody was messaged'}",
        f"- **Acted:** {', '.join(md(name, 100) for name in acted) or 'no person acted (automation only)'}",
        "",
        "## Timeline",
        "| Time (UTC) | Who | Event | What |",
        "|---|---|---|---|",
    ]
    for item in timeline[:MAX_TIMELINE_ROWS]:
        who = ("👤 " if item["kind"] in HUMAN_KINDS else "⚙️ ") + md(item["actor"], 100)
        lines.append(
            f"| {stamp(item['at'])[11:19]} {stamp(item['at'])[:10]} | {who} | {md(item['kind'], 40)} | {md(item['summary'], 300)} |"
        )
    if len(timeline) > MAX_TIMELINE_ROWS:
        lines.append(f"| … | | | {len(timeline) - MAX_TIMELINE_ROWS} more event(s) in the incident record |")
    lines += [
        "",
        "## Impact",
        f"- From the alert's start ({md(starts_at or 'unknown', 40)}) to its resolution "
        f"({stamp(incident.get('resolved_at'))}).",
        f"- Affected: {md(incident.get('service') or incident.get('target') or 'unknown', 300)}",
        "- Customer impact: _to be filled in_",
        "",
        "## Resolution",
    ]
    lines += [f"- {stamp(item['at'])}: {md(item['summary'], 300)}" for item in worked[:50]] or [
        "- No recorded action resolved it (it resolved on its own or outside Toilless): _say what did_"
    ]
    lines += [
        "",
        "## Action plan",
        f"- This alert fired {recurring} time(s) in the last 30 days."
        + (" Recurring: automate it or fix the cause." if recurring >= 3 else ""),
        "- What would have caught it earlier?",
        "- What would have made the response faster (time to acknowledge above)?",
        "- Which follow-up issues are needed (owner, date)?",
    ]
    body = "\n".join(line for line in lines if line is not None)
    return title[:250], body
