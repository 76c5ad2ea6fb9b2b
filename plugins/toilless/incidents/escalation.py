"""Escalation: an unacknowledged incident climbs the ladder (primary -> secondary -> tertiary -> engineering
manager) one step per escalation target of its severity (P0: at 15, 30 and 45 minutes).

:func:`due_level` is pure; :func:`sweep` is what the ``incident_escalation`` DAG runs every two minutes. Each step
is claimed with a compare-and-swap on the incident's level (two sweeps never page twice), recorded on the timeline
(``escalated``, with whom) and announced on the incident channel.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from toilless.incidents import events as ev
from toilless.incidents.rotation import LADDER, Rotation
from toilless.incidents.severity import targets

log = logging.getLogger(__name__)


def due_level(incident: Mapping[str, Any], now: datetime, settings: Mapping[str, Any] | None = None) -> int | None:
    """The ladder level the incident should be at now if that is above its current one; else None."""
    if incident.get("acknowledged_at") is not None or incident.get("resolved_at") is not None:
        return None
    # Non-prod alerts wait for working hours (SOPS.md): nobody is woken up the ladder for them. An incident whose
    # environment is unknown is escalated: better one page too many than a silent outage.
    environments = [str(env).lower() for env in (settings or {}).get("escalate_environments") or []]
    environment = str(incident.get("environment") or "").lower()
    if environments and environment and environment not in environments:
        return None
    escalate = targets(incident.get("severity") or "P2", settings).escalate.total_seconds()
    elapsed = now.timestamp() - float(incident["opened_at"])
    level = min(len(LADDER) - 1, int(elapsed // escalate)) if elapsed >= 0 else 0
    return level if level > int(incident.get("escalation_level") or 0) else None


def sweep(
    engine: Any,
    *,
    now: datetime,
    rotation: Rotation,
    settings: Mapping[str, Any] | None,
    notify: Callable[[str, Mapping[str, Any]], None],
) -> list[dict[str, Any]]:
    """Escalate every unacknowledged incident that is due; returns the steps taken."""
    from toilless.incidents import recorder, store

    steps: list[dict[str, Any]] = []
    for incident in store.open_incidents(engine):
        level = due_level(incident, now, settings)
        if level is None:
            continue
        current = int(incident["escalation_level"] or 0)
        if not store.claim_escalation(
            engine, incident["incident_id"], from_level=current, to_level=level, at=now.timestamp()
        ):
            continue  # acknowledged or escalated by another sweep meanwhile
        role, person = rotation.ladder(now)[level]
        step = {
            "incident_id": incident["incident_id"],
            "alertname": incident["alertname"],
            "severity": incident["severity"],
            "level": level,
            "role": role,
            "person": person,
            "minutes_unacknowledged": round((now.timestamp() - incident["opened_at"]) / 60, 1),
        }
        recorder.record_events(
            [
                ev.make_event(
                    incident["incident_id"],
                    ev.ESCALATED,
                    at=now,
                    summary=f"not acknowledged after {step['minutes_unacknowledged']:g} min: escalated to {role} {person}",
                    data=step,
                    dedupe=f"level:{level}",
                )
            ]
        )
        try:
            notify(person, step)
            sent = ev.make_event(
                incident["incident_id"],
                ev.MESSAGE_SENT,
                at=now,
                summary=f"escalation to {role} {person}",
                data={"to": person, "role": role},
                dedupe=f"escalation-message:{level}",
            )
            recorder.record_events([sent])
        except Exception:
            log.exception("Escalation of %s to %s %s could not be announced", incident["incident_id"], role, person)
            step["announced"] = False
        else:
            step["announced"] = True
        steps.append(step)
    return steps


def utc_now() -> datetime:
    return datetime.now(UTC)
