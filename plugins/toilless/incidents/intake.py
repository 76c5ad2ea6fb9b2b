"""The intake's one call into the incident record: after a delivery's alerts are decided, each decision becomes
events on its incident (alert received with severity, runbook started, alert resolved); a resolved incident is
handed to :mod:`toilless.incidents.autodraft` (its post-mortem draft, for P0/P1).

Event ids are derived from the incident and the fact, so a batch that rolls back and is decided again alert by
alert (the intake's contention path), or a redelivery, records nothing twice. Never raises.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from toilless.incidents import events as ev

log = logging.getLogger(__name__)

#: Outcomes that say nothing new about an incident.
_SILENT = frozenset({"duplicate", "ignored"})


def intake_decided(plans: Sequence[Any], outcomes: Sequence[Any]) -> bool:
    """Record the decisions of one delivery (``plans`` and their ``outcomes``, in the same order)."""
    try:
        batch: list[ev.Event] = []
        for plan, outcome in zip(plans, outcomes, strict=False):
            batch.extend(events_for(plan, outcome))
    except Exception:
        log.exception("Incident record: intake decisions could not be turned into events")
        return False
    from toilless.incidents.recorder import record_events

    written = record_events(batch)
    resolved = [item.incident_id for item in batch if item.kind == ev.ALERT_RESOLVED]
    if written and resolved:
        # A P0/P1 that resolved gets its post-mortem now, not at the next scheduled run (decided off this thread:
        # the intake's transaction is still open).
        from toilless.incidents import autodraft

        autodraft.request_drafts(resolved)
    return written


def acks_sent(messages: Sequence[tuple[str, str, str, str]]) -> bool:
    """Record the intake's Slack messages the outbox posted: ``(incident, channel, text, outbox key)`` each, in one
    write. The first line of the text and the channel, as a task's own messages are recorded. Never raises."""
    try:
        batch = [
            ev.make_event(
                incident,
                ev.MESSAGE_SENT,
                summary=(text.splitlines() or [""])[0][:200],
                data={"channel": channel, "via": "intake"},
                dedupe=f"intake-ack:{key}:{channel}:{text[:200]}",
            )
            for incident, channel, text, key in messages
        ]
    except Exception:
        log.exception("Incident record: posted acks could not be turned into events")
        return False
    from toilless.incidents.recorder import record_events

    return record_events(batch)


def queued_started(alert: Any, *, dag_id: str, run_id: str, target: str) -> bool:
    """Record that a queued alert's runbook started now (its target became free). Never raises.

    The same event (and event id) as a runbook started at once, so a retried start records nothing twice.
    """
    try:
        event = _runbook_started(ev.incident_key(alert.fingerprint, alert.starts_at_utc), dag_id, run_id, target)
    except Exception:
        log.exception("Incident record: a queued start could not be turned into an event")
        return False
    from toilless.incidents.recorder import record_events

    return record_events([event])


def _runbook_started(incident_id: str, dag_id: str, run_id: str, target: str) -> ev.Event:
    return ev.make_event(
        incident_id,
        ev.RUNBOOK_STARTED,
        summary=f"runbook {dag_id} started",
        data={"dag_id": dag_id, "run_id": run_id, "target": target},
        dedupe=f"started:{run_id}",
    )


def events_for(plan: Any, outcome: Any) -> list[ev.Event]:
    """Pure: the events one intake decision adds to its incident."""
    if outcome.status in _SILENT:
        return []
    alert = plan.alert
    incident_id = ev.incident_key(alert.fingerprint, alert.starts_at_utc)
    labels = dict(alert.labels)
    if outcome.status == "resolved":
        return [
            ev.make_event(
                incident_id,
                ev.ALERT_RESOLVED,
                actor="alertmanager",
                summary=f"{alert.alertname} resolved",
                data={"ends_at": alert.ends_at_utc, "detail": outcome.detail},
                dedupe="resolved",
            )
        ]
    facts = plan.facts
    severity = getattr(getattr(facts, "priority", None), "code", "") or ""
    data: dict[str, Any] = {
        "alertname": alert.alertname,
        "title": (getattr(facts, "summary", "") or alert.annotations.get("summary", ""))[:500],
        "severity": severity,
        "environment": getattr(facts, "environment", "") or "",
        "service": labels.get("service") or labels.get("job") or labels.get("app") or "",
        "dag_id": outcome.dag_id,
        "run_id": outcome.run_id,
        "target": outcome.target,
        "decision": outcome.status,
        "detail": outcome.detail,
        "starts_at": alert.starts_at_utc,
        "labels": labels,
        "channel": plan.channel,
    }
    found = [
        ev.make_event(
            incident_id,
            ev.ALERT_RECEIVED,
            actor="alertmanager",
            summary=f"{alert.alertname} firing; intake decided: {outcome.status}",
            data=data,
            dedupe="received",
        )
    ]
    if severity:
        found.append(
            ev.make_event(
                incident_id,
                ev.SEVERITY_SET,
                summary=f"severity {severity} from the alert's labels",
                data={"severity": severity, "source": "labels"},
                dedupe="severity:labels",
            )
        )
    if outcome.status == "started" and outcome.run_id:
        found.append(_runbook_started(incident_id, outcome.dag_id, outcome.run_id, outcome.target))
    return found
