"""The incident timeline's tables and the queries on them (SQLAlchemy Core, SQLite or PostgreSQL).

* ``toilless_incident`` (PK ``incident_id``, see :func:`toilless.incidents.events.incident_key`): one row per
  incident with what the timeline adds up to (severity, opened / acknowledged / resolved, escalation level, the
  post-mortem's URL), so the sweeper and the handoff read one row, not every event;
* ``toilless_incident_event`` (PK ``event_id``): the timeline. An event id is written once: an outbox retry or a
  redone intake batch finds it and adds nothing, and only newly inserted events change the incident row.

Created on first use (``CREATE TABLE IF NOT EXISTS``) like the intake's tables. Where the tables live is decided in
:mod:`toilless.incidents.db` (a Connection of their own, not Airflow's metadata DB).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from toilless.incidents import events as ev

metadata = MetaData()

incident = Table(
    "toilless_incident",
    metadata,
    Column("incident_id", String(64), primary_key=True),
    Column("alertname", String(250), nullable=False, default=""),
    Column("title", String(500), nullable=False, default=""),
    Column("severity", String(2), nullable=False, default="P2"),
    Column("environment", String(100), nullable=False, default=""),
    Column("service", String(250), nullable=False, default=""),
    Column("group_key", String(1000), nullable=False, default=""),
    Column("dag_id", String(250), nullable=False, default=""),
    Column("run_id", String(250), nullable=False, default=""),
    Column("target", String(1000), nullable=False, default=""),
    Column("opened_at", Float, nullable=False, index=True),
    Column("acknowledged_at", Float, nullable=True),
    Column("acknowledged_by", String(200), nullable=True),
    Column("acknowledged_via", String(50), nullable=True),
    Column("resolved_at", Float, nullable=True, index=True),
    Column("escalation_level", Integer, nullable=False, default=0),
    Column("escalated_at", Float, nullable=True),
    Column("postmortem_url", String(500), nullable=True),
    Column("updated_at", Float, nullable=False),
)

event = Table(
    "toilless_incident_event",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("incident_id", String(64), nullable=False, index=True),
    Column("at", Float, nullable=False),
    Column("seq", Integer, nullable=False, default=0),  # order of events written at the same instant
    Column("kind", String(40), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("summary", Text, nullable=False),
    Column("data_json", Text, nullable=False),
)

_created: set[str] = set()
_create_lock = threading.Lock()


def ensure_tables(engine: Any) -> None:
    """Create the tables once per engine and process; safe when several processes race to do it."""
    key = str(engine.url)
    if key in _created:
        return
    with _create_lock:
        if key in _created:
            return
        try:
            metadata.create_all(bind=engine, checkfirst=True)
        except Exception:
            metadata.create_all(bind=engine, checkfirst=True)  # another process created them meanwhile
        _created.add(key)


def write_events(engine: Any, batch: Sequence[ev.Event]) -> int:
    """Write events in one transaction (idempotent by event id); returns how many were new."""
    if not batch:
        return 0
    ensure_tables(engine)
    try:
        return _write(engine, batch)
    except IntegrityError:
        # Two writers inserted the same incident or event at once: the second pass sees the first's rows.
        return _write(engine, batch)


def _write(engine: Any, batch: Sequence[ev.Event]) -> int:
    unique = list({item.event_id: item for item in batch}.values())
    with engine.begin() as conn:
        known = set(
            conn.execute(select(event.c.event_id).where(_among(event.c.event_id, [item.event_id for item in unique])))
            .scalars()
            .all()
        )
        fresh = [item for item in unique if item.event_id not in known]
        if not fresh:
            return 0
        ids = sorted({item.incident_id for item in fresh})
        rows = {
            row.incident_id: dict(row._mapping)
            for row in conn.execute(select(incident).where(_among(incident.c.incident_id, ids)))
        }
        new_ids = set(ids) - rows.keys()
        for incident_id in new_ids:
            opened = min(item.at for item in fresh if item.incident_id == incident_id)
            rows[incident_id] = _blank(incident_id, opened)
        before = {key: dict(value) for key, value in rows.items()}
        for _seq, item in enumerate(sorted(fresh, key=lambda item: item.at)):
            _apply(rows[item.incident_id], item)
        if new_ids:
            conn.execute(insert(incident), [rows[incident_id] for incident_id in sorted(new_ids)])
        for incident_id in ids:
            if incident_id in new_ids or rows[incident_id] == before[incident_id]:
                continue
            changes = {k: v for k, v in rows[incident_id].items() if before[incident_id].get(k) != v}
            conn.execute(update(incident).where(incident.c.incident_id == incident_id).values(**changes))
        conn.execute(
            insert(event),
            [
                {
                    "event_id": item.event_id,
                    "incident_id": item.incident_id,
                    "at": item.at,
                    "seq": seq,
                    "kind": item.kind,
                    "actor": item.actor,
                    "summary": item.summary,
                    "data_json": json.dumps(item.data, default=str, sort_keys=True),
                }
                for seq, item in enumerate(fresh)
            ],
        )
        return len(fresh)


def _among(column: Any, values: list[str]) -> Any:
    """``column = v`` for one value (the common single-event write: no IN expansion to compile), else ``IN``."""
    return column == values[0] if len(values) == 1 else column.in_(values)


def _blank(incident_id: str, opened_at: float) -> dict[str, Any]:
    return {
        "incident_id": incident_id,
        "alertname": "",
        "title": "",
        "severity": "P2",
        "environment": "",
        "service": "",
        "group_key": "",
        "dag_id": "",
        "run_id": "",
        "target": "",
        "opened_at": opened_at,
        "acknowledged_at": None,
        "acknowledged_by": None,
        "acknowledged_via": None,
        "resolved_at": None,
        "escalation_level": 0,
        "escalated_at": None,
        "postmortem_url": None,
        "updated_at": opened_at,
    }


def _apply(row: dict[str, Any], item: ev.Event) -> None:
    """What one new event changes on its incident row."""
    data = item.data
    row["opened_at"] = min(row["opened_at"], item.at)
    row["updated_at"] = max(row["updated_at"], item.at)
    if item.kind == ev.ALERT_RECEIVED:
        for key, limit in (
            ("alertname", 250),
            ("title", 500),
            ("environment", 100),
            ("service", 250),
            ("group_key", 1000),
            ("dag_id", 250),
            ("run_id", 250),
            ("target", 1000),
        ):
            if data.get(key) and not row[key]:
                row[key] = str(data[key])[:limit]
        if data.get("severity") in SEVERITY_CODES:
            row["severity"] = data["severity"]
    elif item.kind == ev.RUNBOOK_STARTED:
        row["dag_id"] = str(data.get("dag_id") or row["dag_id"])[:250]
        row["run_id"] = str(data.get("run_id") or row["run_id"])[:250]
    elif item.kind == ev.SEVERITY_SET and data.get("severity") in SEVERITY_CODES:
        row["severity"] = data["severity"]
    elif item.kind == ev.ACKNOWLEDGED and row["acknowledged_at"] is None:
        row["acknowledged_at"], row["acknowledged_by"] = item.at, item.actor
        row["acknowledged_via"] = str(data.get("via") or "")[:50]
    elif item.kind == ev.ALERT_RESOLVED and row["resolved_at"] is None:
        row["resolved_at"] = item.at
    elif item.kind == ev.ESCALATED:
        row["escalation_level"] = max(row["escalation_level"], int(data.get("level") or 0))
        row["escalated_at"] = item.at
    elif item.kind == ev.POSTMORTEM_FILED and data.get("url"):
        row["postmortem_url"] = str(data["url"])[:500]


SEVERITY_CODES = frozenset({"P0", "P1", "P2", "P3"})


# -- reads -------------------------------------------------------------------------------------------------------
def get_incident(engine: Any, incident_id: str) -> dict[str, Any] | None:
    ensure_tables(engine)
    with engine.connect() as conn:
        row = conn.execute(select(incident).where(incident.c.incident_id == incident_id)).first()
    return dict(row._mapping) if row is not None else None


def timeline(engine: Any, incident_id: str) -> list[dict[str, Any]]:
    """The incident's events, oldest first (ties in the order they were written)."""
    ensure_tables(engine)
    query = select(event).where(event.c.incident_id == incident_id).order_by(event.c.at, event.c.seq, event.c.event_id)
    with engine.connect() as conn:
        return [_event_row(row) for row in conn.execute(query)]


def timelines(engine: Any, incident_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """Timelines of several incidents in one query per 500 ids."""
    ensure_tables(engine)
    ids = sorted(set(incident_ids))
    found: dict[str, list[dict[str, Any]]] = {incident_id: [] for incident_id in ids}
    with engine.connect() as conn:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            query = select(event).where(event.c.incident_id.in_(chunk)).order_by(event.c.at, event.c.seq)
            for row in conn.execute(query):
                found[row.incident_id].append(_event_row(row))
    return found


def _event_row(row: Any) -> dict[str, Any]:
    values = dict(row._mapping)
    values["data"] = json.loads(values.pop("data_json") or "{}")
    return values


def open_incidents(engine: Any) -> list[dict[str, Any]]:
    """Unresolved incidents, oldest first."""
    ensure_tables(engine)
    query = select(incident).where(incident.c.resolved_at.is_(None)).order_by(incident.c.opened_at)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def incidents_between(engine: Any, start: float, end: float) -> list[dict[str, Any]]:
    """Incidents open at any moment of [start, end): opened before the end, not resolved before the start."""
    ensure_tables(engine)
    query = (
        select(incident)
        .where(incident.c.opened_at < end, or_(incident.c.resolved_at.is_(None), incident.c.resolved_at >= start))
        .order_by(incident.c.opened_at, incident.c.incident_id)
    )
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def resolved_without_postmortem(engine: Any, severities: Iterable[str], since: float) -> list[dict[str, Any]]:
    ensure_tables(engine)
    query = (
        select(incident)
        .where(
            incident.c.resolved_at.is_not(None),
            incident.c.resolved_at >= since,
            incident.c.postmortem_url.is_(None),
            incident.c.severity.in_(sorted(severities)),
        )
        .order_by(incident.c.resolved_at)
    )
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def claim_escalation(engine: Any, incident_id: str, *, from_level: int, to_level: int, at: float) -> bool:
    """Compare-and-swap the escalation level (still unacknowledged, unresolved, at ``from_level``): True if this
    caller won, so two sweepers never page the same step twice."""
    ensure_tables(engine)
    with engine.begin() as conn:
        changed = conn.execute(
            update(incident)
            .where(
                incident.c.incident_id == incident_id,
                incident.c.escalation_level == from_level,
                incident.c.acknowledged_at.is_(None),
                incident.c.resolved_at.is_(None),
            )
            .values(escalation_level=to_level, escalated_at=at, updated_at=at)
        ).rowcount
    return changed == 1
