"""What an incident event is: its kinds, the incident key of an alert, and a bounded, masked event. Pure.

An incident is one firing of an alert group as Toilless sees it: Alertmanager's ``fingerprint`` (the hash of the
alert's label set, which holds the group labels) plus its ``startsAt``. Every re-send and every HA replica of that
firing gives the same key, and so does the run conf of the runbook it started (``conf.alert`` carries both), so the
intake, the action gate inside the run and the report helpers all write to the same timeline without a lookup.
Alertmanager's ``groupKey`` is kept as an attribute when the intake knows it; it is not the key because a run does
not carry it and one notification group may hold unrelated alerts (``group_by: [alertname]``).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from toilless.common.errors import InvalidInput
from toilless.common.redaction import mask_secrets, mask_structure

ALERT_RECEIVED = "alert_received"
ALERT_RESOLVED = "alert_resolved"
ACKNOWLEDGED = "acknowledged"
SEVERITY_SET = "severity_set"
RUNBOOK_STARTED = "runbook_started"
RUNBOOK_FINISHED = "runbook_finished"
GATE_VERDICT = "gate_verdict"
ACTION = "action"
APPROVAL = "approval"
MESSAGE_SENT = "message_sent"
ESCALATED = "escalated"
POSTMORTEM_FILED = "postmortem_filed"

KINDS = frozenset(
    {
        ALERT_RECEIVED,
        ALERT_RESOLVED,
        ACKNOWLEDGED,
        SEVERITY_SET,
        RUNBOOK_STARTED,
        RUNBOOK_FINISHED,
        GATE_VERDICT,
        ACTION,
        APPROVAL,
        MESSAGE_SENT,
        ESCALATED,
        POSTMORTEM_FILED,
    }
)
#: Events a person did (the rest are the system's), for the post-mortem's "human and system events".
HUMAN_KINDS = frozenset({ACKNOWLEDGED, APPROVAL})

MAX_SUMMARY_CHARS = 500
MAX_ACTOR_CHARS = 200
MAX_DATA_CHARS = 8_000


class IncidentError(InvalidInput):
    """Bad input to the incident record (unknown kind, unknown incident, bad severity); the message says which."""


class UnknownIncident(IncidentError):
    """No incident has this id."""


def incident_key(fingerprint: str, starts_at: str) -> str:
    """The incident id of one firing: 20 hex digits, the same for every re-send, replica and run of it."""
    text = f"{fingerprint}\n{normalise_time(starts_at)}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def incident_of_alert(alert: Mapping[str, Any] | None) -> str | None:
    """The incident id of a run conf's ``alert`` object (``fingerprint`` + ``startsAt``), None without one."""
    if not isinstance(alert, Mapping):
        return None
    fingerprint, starts_at = alert.get("fingerprint"), alert.get("startsAt")
    if not fingerprint or not starts_at:
        return None
    try:
        return incident_key(str(fingerprint), str(starts_at))
    except ValueError:
        return None


def normalise_time(value: str) -> str:
    """RFC 3339 in UTC with microseconds, as the intake writes startsAt; raises ValueError if unreadable."""
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Event:
    """One line of an incident's timeline. ``event_id`` makes a retried write (outbox, redone batch) harmless."""

    incident_id: str
    kind: str
    at: float  # epoch seconds
    actor: str = "toilless"
    summary: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    event_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "incident_id": self.incident_id,
            "kind": self.kind,
            "at": self.at,
            "actor": self.actor,
            "summary": self.summary,
            "data": self.data,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Event:
        return make_event(
            str(raw["incident_id"]),
            str(raw["kind"]),
            at=float(raw["at"]),
            actor=str(raw.get("actor") or "toilless"),
            summary=str(raw.get("summary") or ""),
            data=dict(raw.get("data") or {}),
            event_id=str(raw.get("event_id") or ""),
        )


def make_event(
    incident_id: str,
    kind: str,
    *,
    at: float | datetime | None = None,
    actor: str = "toilless",
    summary: str = "",
    data: Mapping[str, Any] | None = None,
    event_id: str = "",
    dedupe: str = "",
) -> Event:
    """A checked event: known kind, bounded and masked text. ``dedupe`` gives a deterministic id (same fact twice ->
    one row); without it a random id."""
    if kind not in KINDS:
        raise IncidentError(f"unknown incident event kind {kind!r} (known: {', '.join(sorted(KINDS))})")
    if not incident_id or len(incident_id) > 64:
        raise IncidentError("an incident event needs an incident id of 1-64 characters")
    if isinstance(at, datetime):
        moment = (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
    else:
        moment = float(at) if at is not None else datetime.now(UTC).timestamp()
    payload = mask_structure(dict(data or {}))
    encoded = json.dumps(payload, default=str, sort_keys=True)
    if len(encoded) > MAX_DATA_CHARS:
        payload = {"truncated": True, "preview": encoded[: MAX_DATA_CHARS - 200]}
    if not event_id:
        event_id = (
            hashlib.sha256(f"{incident_id}\n{kind}\n{dedupe}".encode()).hexdigest()[:32] if dedupe else uuid.uuid4().hex
        )
    return Event(
        incident_id=incident_id,
        kind=kind,
        at=moment,
        actor=mask_secrets(str(actor))[:MAX_ACTOR_CHARS] or "toilless",
        summary=mask_secrets(str(summary))[:MAX_SUMMARY_CHARS],
        data=payload,
        event_id=event_id,
    )
