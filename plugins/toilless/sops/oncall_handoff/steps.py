"""Task bodies of ``oncall_handoff``: read the week from the incident record, check the monitoring path, build the
document (handoff.py), write it and post the summary."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from toilless.common import slack

log = logging.getLogger(__name__)


def week_before(moment: datetime) -> tuple[datetime, datetime]:
    """The last complete on-call week before ``moment``: Monday 00:00 UTC to the next Monday 00:00 UTC."""
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    this_monday = day - timedelta(days=day.weekday())
    return this_monday - timedelta(days=7), this_monday


def maintenance_ahead(toilless_settings: Mapping[str, Any], start: datetime, days: int = 7) -> list[str]:
    """The maintenance windows that open within ``days`` of ``start``."""
    from toilless.common.policies import window_from_config

    window = window_from_config(toilless_settings.get("maintenance_window"))
    if window is None:
        return []
    found, probe, end = [], start, start + timedelta(days=days)
    while probe < end:
        opening = window.next_start(probe)
        if opening >= end:
            break
        closing = window.next_end(opening)
        found.append(f"maintenance window {opening:%a %Y-%m-%d %H:%M}-{closing:%H:%M} UTC ({window.describe()})")
        probe = closing + timedelta(minutes=1)
    return found


#: How a silence Toilless created is ended early (docs/incidents.md); the handoff names it next to each silence.
EXPIRE_PATH = "POST /toilless/incidents/silences/{id}/expire"


def toilless_silences(moment: datetime) -> tuple[list[str], set[str]]:
    """The silences Toilless created (alert triage's list: noise it silenced, Slack Silence presses), in force or
    ended within the list's keep time: who, why, until when, and how to end an active one early. Also their ids
    (so the Alertmanager listing does not repeat them)."""
    try:
        from toilless.sops.triage_alert.steps import list_silences

        rows = list_silences(moment)
    except Exception as err:
        log.warning("The list of silences Toilless created could not be read: %s", type(err).__name__)
        return [f"silences Toilless created: the list could not be read ({type(err).__name__})"], set()
    lines = []
    for row in rows[:50]:
        ended = row.get("expiredAt") or row.get("endsAt")
        state = "active" if row.get("active") else ("expired early" if row.get("expiredAt") else "ended")
        matchers = ", ".join(f"{name}={value}" for name, value in sorted((row.get("matchers") or {}).items()))
        how = f"; end early: {EXPIRE_PATH.format(id=row['id'])}" if row.get("active") else ""
        lines.append(
            f"Toilless silence {row['id']} ({state}) until {str(ended)[:16].replace('T', ' ')} UTC, "
            f"by {str(row.get('createdBy'))[:80]}{how}; why: {str(row.get('comment'))[:160]}; matchers {matchers[:160]}"
        )
    if len(rows) > 50:
        lines.append(f"… and {len(rows) - 50} more silence(s) Toilless created")
    return lines, {str(row["id"]) for row in rows}


def silences_ahead(
    conn_id: str = "alertmanager", skip: frozenset[str] | set[str] = frozenset()
) -> tuple[list[str], tuple[str, bool, str]]:
    """Active and pending Alertmanager silences (but those in ``skip``, listed on their own), and the reachability
    check (``GET /api/v2/silences``)."""
    import requests
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception:
        return [], ("Alertmanager reachable", False, f"no Connection {conn_id}: not checked")
    base = (conn.host if "://" in (conn.host or "") else f"http://{conn.host}:{conn.port or 9093}").rstrip("/")
    try:
        response = requests.get(f"{base}/api/v2/silences", timeout=10)
        response.raise_for_status()
        silences = response.json()
    except Exception as err:
        return [], ("Alertmanager reachable", False, f"{type(err).__name__} from {base}")
    found = []
    for item in silences[:100] if isinstance(silences, list) else []:
        state = (item.get("status") or {}).get("state")
        if state not in ("active", "pending") or item.get("id") in skip:
            continue
        matchers = ", ".join(f"{m.get('name')}={m.get('value')}" for m in item.get("matchers") or [])[:200]
        found.append(f"silence ({state}) {matchers} until {item.get('endsAt')} by {item.get('createdBy')}")
    return found, ("Alertmanager reachable", True, f"{len(silences)} silence(s) listed")


def selftest_check() -> tuple[str, bool, str]:
    try:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        count = RuntimeTaskInstance.get_dr_count(dag_id="alert_intake_selftest", states=["success"])
    except Exception as err:
        return ("alert intake self-test", False, f"could not read its runs ({type(err).__name__})")
    return ("alert intake self-test", count > 0, f"{count} successful run(s) on record")


def build_handoff(moment: datetime, params: Mapping[str, Any]) -> dict[str, Any]:
    from toilless.common.config import load_config
    from toilless.incidents import db, outbox, store
    from toilless.incidents.settings import load_settings
    from toilless.sops.oncall_handoff.handoff import build

    settings = load_settings()
    toilless_settings = load_config("toilless")
    start, end = week_before(moment)
    engine = db.engine()
    incidents = store.incidents_between(engine, start.timestamp(), end.timestamp())
    timelines = store.timelines(engine, [item["incident_id"] for item in incidents[:300]])
    open_now = store.open_incidents(engine)
    ours, our_ids = toilless_silences(moment)
    silences, alertmanager = silences_ahead(skip=our_ids)
    channel = str(settings.get("handoff_channel") or "ops")
    slack_ok = channel in (toilless_settings.get("slack", {}).get("channels") or {})
    selfcheck = [
        (
            "incident record",
            True,
            f"{len(incidents)} incident(s) read; {outbox.pending()} event(s) waiting in this host's outbox",
        ),
        selftest_check(),
        alertmanager,
        ("Slack reachable", slack_ok, f"channel {channel} configured; this summary is the proof it posts"),
    ]
    handoff = build(
        incidents,
        timelines,
        week_start=start,
        week_end=end,
        open_incidents=open_now,
        ahead=maintenance_ahead(toilless_settings, end) + ours + silences,
        selfcheck=selfcheck,
        top=int(settings.get("handoff", {}).get("top_recurring", 10)),
    )
    folder = Path(str(settings.get("handoff", {}).get("output_dir") or "toilless_handoffs"))
    if not folder.is_absolute():
        folder = Path(os.environ.get("AIRFLOW_HOME") or ".") / folder
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"oncall-handoff-{start:%Y-%m-%d}.md"
    path.write_text(handoff.markdown, encoding="utf-8")
    chart = None
    try:
        from toilless.sops.oncall_handoff.chart import render_chart

        chart = render_chart(incidents, start, folder / f"oncall-handoff-{start:%Y-%m-%d}.png")
    except Exception:
        log.exception("Handoff chart could not be drawn; the document and summary go out without it")
    summary = handoff.summary() | {
        "path": str(path),
        "chart": str(chart) if chart else None,
        "selfcheck_failed": [name for name, ok, _ in selfcheck if not ok],
    }
    if not params.get("dry_run"):
        post_summary(channel, summary)
        if chart is not None:
            from toilless.common.reporting import upload_file

            upload_file(channel, chart, title=f"On-call week of {start:%Y-%m-%d}")
    return summary


def summary_message(summary: Mapping[str, Any]) -> dict[str, Any]:
    severity = ", ".join(f"{code} {count}" for code, count in summary["by_severity"].items())
    top = slack.join(slack.mrkdwn("{} x{}", slack.code(name, 100), count) for name, count in summary["top_recurring"])
    failed = summary.get("selfcheck_failed") or []
    text = slack.mrkdwn(
        ":clipboard: *On-call handoff*, week of {}: {} incident(s) ({}); {} open now.\nRecurring: {}\nSelf-check: {}\n"
        "Document: {}",
        slack.escape(summary["week_start"][:10], 10),
        slack.escape(summary["incidents"], 10),
        slack.escape(severity, 100),
        slack.escape(summary["open"], 10),
        top or slack.Mrkdwn("none"),
        slack.escape("all green" if not failed else "FAILED: " + ", ".join(failed), 300),
        slack.code(summary.get("path", ""), 300),
    )
    return {"text": text, "blocks": [slack.section(text)]}


def post_summary(channel: str, summary: Mapping[str, Any]) -> None:
    from toilless.common.reporting import post_message

    message = summary_message(summary)
    post_message(channel, message["text"], blocks=message["blocks"])
