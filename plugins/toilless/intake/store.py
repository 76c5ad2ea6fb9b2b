"""The intake's own state in Airflow's metadata DB: an inbox of accepted deliveries, a ledger of decisions,
per-target locks and a Slack outbox.

* ``toilless_intake_inbox``: a delivery, validated and accepted, written in ONE insert before the HTTP answer
  (the durable inbox). The worker drains it: the alerts are decided and the row is marked done in the same
  transaction as their ledger rows, so a crash between answer and decision, or during a drain, loses nothing and
  decides nothing twice. On PostgreSQL several workers claim rows with ``FOR UPDATE SKIP LOCKED``.

Why tables and not read-then-write on dag_run: two deliveries of the same alert, or two different alerts for one
target, can arrive at the same moment (Alertmanager HA replicas, retries). Each decision commits in ONE transaction
with the DAG run it creates, guarded by primary keys:

* ``toilless_intake_alert`` (PK alert_key = dag, target, fingerprint, startsAt): one decision per firing alert;
* ``toilless_intake_target`` (PK dag_id + target): which run holds the target; taking it over from a finished run is
  a compare-and-swap UPDATE (``WHERE run_id = <the finished one>``), so only one contender wins;
* ``toilless_intake_outbox``: Slack messages written in the same transaction, posted by the worker after the HTTP
  answer, so Alertmanager never waits on Slack and no acknowledgement is lost if Slack is down.

The tables are created on first use (``CREATE TABLE IF NOT EXISTS``); Airflow's migrations ignore them.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, text

metadata = MetaData()

ledger = Table(
    "toilless_intake_alert",
    metadata,
    Column("alert_key", String(64), primary_key=True),
    Column("dag_id", String(250), nullable=False),
    Column("target", String(1000), nullable=False),
    Column("route", String(250), nullable=False),
    Column("run_id", String(250), nullable=True),
    # started | skipped | queued | notify_only | no_runbook | cancelled
    Column("decision", String(20), nullable=False, index=True),
    Column("alertname", String(250), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("starts_at", String(40), nullable=False),
    Column("payload_json", Text, nullable=True),  # queued alerts: what to start later
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False, index=True),
    Column("resolved_at", Float, nullable=True),
)

target_lock = Table(
    "toilless_intake_target",
    metadata,
    Column("dag_id", String(250), primary_key=True),
    Column("target_hash", String(64), primary_key=True),
    Column("target", String(1000), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("alert_key", String(64), nullable=False),
    Column("updated_at", Float, nullable=False),
)

outbox = Table(
    "toilless_intake_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel", String(100), nullable=False),
    Column("message_json", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("claimed_until", Float, nullable=True),
    Column("last_error", Text, nullable=True),
)

inbox = Table(
    "toilless_intake_inbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("receiver", String(250), nullable=False),
    Column("alerts", Integer, nullable=False),
    Column("payload_json", Text, nullable=False),  # the validated WebhookPayload
    Column("received_at", Float, nullable=False),
    # null until its alerts are decided (set in the same transaction as their ledger rows)
    Column("done_at", Float, nullable=True, index=True),
    Column("outcome_json", Text, nullable=True),  # the per-alert decisions, for GET /deliveries/{id}
    Column("attempts", Integer, nullable=False, default=0),
    Column("not_before", Float, nullable=True),  # backoff after a failed drain of this row
    Column("last_error", Text, nullable=True),
)

_created = False
_create_lock = threading.Lock()


def ensure_tables(engine: Any) -> None:
    """Create the intake tables once per process; safe when several processes race to do it."""
    global _created
    if _created:
        return
    with _create_lock:
        if _created:
            return
        try:
            metadata.create_all(bind=engine, checkfirst=True)
        except Exception:
            # Another API server worker created them between our check and create: fine if they exist now.
            metadata.create_all(bind=engine, checkfirst=True)
        _created = True


def target_hash(target: str) -> str:
    return hashlib.sha256(target.encode()).hexdigest()


def now() -> float:
    return time.time()


def is_sqlite(session: Any) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def count_rows(session: Any, table: Table) -> int:
    return int(session.execute(text(f"SELECT COUNT(*) FROM {table.name}")).scalar_one())  # noqa: S608 - fixed names


def claim_inbox(dialect: str, rows: int, moment: float, only: int | None = None) -> Any:
    """The oldest undecided deliveries that are due (``rows`` at most), locked for this transaction.

    On PostgreSQL ``FOR UPDATE SKIP LOCKED``: two API servers draining at once each take rows the other does not
    hold, and hold them until their decisions commit. SQLite has one writer at a time (one draining process).
    """
    from sqlalchemy import or_, select

    query = (
        select(inbox.c.id, inbox.c.alerts, inbox.c.payload_json)
        .where(inbox.c.done_at.is_(None), or_(inbox.c.not_before.is_(None), inbox.c.not_before <= moment))
        .order_by(inbox.c.id)
        .limit(rows)
    )
    if only is not None:
        query = query.where(inbox.c.id == only)
    if dialect == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return query
