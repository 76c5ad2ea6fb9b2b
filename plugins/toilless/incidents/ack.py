"""Acknowledging an incident: the one function the REST route, the Airflow UI link and Slack buttons call."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from toilless.incidents import events as ev

#: Who acknowledged: a user name or Slack handle, not free text.
_ACTOR = re.compile(r"^[\w.@+\- ]{1,100}\Z")
VIAS = frozenset({"rest", "ui", "slack", "cli", "test"})


class AcknowledgeUnavailable(Exception):
    """The incident database could not be reached: the acknowledgement is NOT stored; retry."""


def acknowledge(
    incident_id: str, by: str, via: str, *, engine: Any = None, now: datetime | None = None
) -> dict[str, Any]:
    """Acknowledge ``incident_id`` on behalf of ``by`` (a user name or Slack handle) through ``via``
    (``rest``, ``ui``, ``slack``, ``cli``).

    Stops the escalation of that incident: the sweeper escalates only unacknowledged ones. Idempotent: the first
    acknowledgement is the one kept; a later call answers ``already: True`` with who acknowledged first and when.
    Written to the database directly, not through the outbox: the caller must know whether it is stored.

    :return: ``{"incident_id", "acknowledged_by", "acknowledged_at" (ISO), "via", "already", "resolved"}``
    :raises toilless.incidents.events.UnknownIncident: no incident has this id (REST: 404)
    :raises toilless.incidents.events.IncidentError: ``by`` or ``via`` is malformed (REST: 422)
    :raises AcknowledgeUnavailable: the database is unreachable; nothing was stored (REST: 503)
    """
    from toilless.incidents import db, store

    if not isinstance(incident_id, str) or not re.fullmatch(r"[0-9a-f]{1,64}", incident_id):
        raise ev.UnknownIncident(f"no incident {str(incident_id)[:70]!r} (incident ids are hexadecimal)")
    if not isinstance(by, str) or not _ACTOR.match(by.strip()):
        raise ev.IncidentError("'by' must be a user name or Slack handle (letters, digits, . @ + - _, 1-100 chars)")
    if via not in VIAS:
        raise ev.IncidentError(f"'via' must be one of {', '.join(sorted(VIAS))}")
    engine = engine or db.engine()
    try:
        row = store.get_incident(engine, incident_id)
    except Exception as err:
        raise AcknowledgeUnavailable(f"incident database unreachable: {type(err).__name__}") from err
    if row is None:
        raise ev.UnknownIncident(f"no incident {incident_id!r}")
    already = row["acknowledged_at"] is not None
    if not already:
        moment = now or datetime.now(UTC)
        item = ev.make_event(
            incident_id,
            ev.ACKNOWLEDGED,
            at=moment,
            actor=by.strip(),
            summary=f"acknowledged via {via}",
            data={"via": via},
            dedupe="ack",
        )
        try:
            store.write_events(engine, [item])
            row = store.get_incident(engine, incident_id) or row
        except Exception as err:
            raise AcknowledgeUnavailable(f"incident database unreachable: {type(err).__name__}") from err
        already = row["acknowledged_by"] != by.strip() or row["acknowledged_via"] != via
    return {
        "incident_id": incident_id,
        "acknowledged_by": row["acknowledged_by"],
        "acknowledged_at": datetime.fromtimestamp(row["acknowledged_at"], UTC).isoformat(),
        "via": row["acknowledged_via"],
        "already": already,
        "resolved": row["resolved_at"] is not None,
    }


def set_severity(
    incident_id: str, severity: Any, by: str, *, engine: Any = None, now: datetime | None = None
) -> dict[str, Any]:
    """Change an incident's severity (P0-P3) on behalf of ``by``; the escalation targets follow at the next sweep.

    :raises toilless.incidents.severity.InvalidSeverity: outside P0-P3 (REST: 422)
    :raises toilless.incidents.events.UnknownIncident: no such incident (REST: 404)
    :raises AcknowledgeUnavailable: the database is unreachable; nothing stored (REST: 503)
    """
    from toilless.incidents import db, store
    from toilless.incidents.severity import parse_severity

    code = parse_severity(severity)
    if not isinstance(by, str) or not _ACTOR.match(by.strip()):
        raise ev.IncidentError("'by' must be a user name or Slack handle (letters, digits, . @ + - _, 1-100 chars)")
    if not isinstance(incident_id, str) or not re.fullmatch(r"[0-9a-f]{1,64}", incident_id):
        raise ev.UnknownIncident(f"no incident {str(incident_id)[:70]!r} (incident ids are hexadecimal)")
    engine = engine or db.engine()
    try:
        row = store.get_incident(engine, incident_id)
        if row is None:
            raise ev.UnknownIncident(f"no incident {incident_id!r}")
        if row["severity"] != code:
            item = ev.make_event(
                incident_id,
                ev.SEVERITY_SET,
                at=now or datetime.now(UTC),
                actor=by.strip(),
                summary=f"severity {row['severity']} -> {code}",
                data={"severity": code, "was": row["severity"]},
            )
            store.write_events(engine, [item])
    except ev.IncidentError:
        raise
    except Exception as err:
        raise AcknowledgeUnavailable(f"incident database unreachable: {type(err).__name__}") from err
    return {"incident_id": incident_id, "severity": code, "was": row["severity"]}
