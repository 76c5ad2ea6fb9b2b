"""The intake's own state in Airflow's metadata DB: an inbox of accepted deliveries, a ledger of decisions,
per-target locks and a Slack outbox.

Over 400 lines because every statement on the intake's tables (the exactly-once ledger, locks, inbox, outbox) is
kept in one module, where its guarantees are reviewed together.

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

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

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


# -- the inbox ---------------------------------------------------------------------------------------------------
#: PostgreSQL channel on which every inbox insert notifies the workers (``LISTEN``, see toilless.intake.worker).
INBOX_CHANNEL = "toilless_intake_inbox"


def insert_inbox(session: Any, *, receiver: str, alerts: int, body: str) -> int:
    """Write one accepted delivery; returns its id.

    On PostgreSQL the same statement also ``pg_notify``s :data:`INBOX_CHANNEL` (a data-modifying CTE: still one
    round trip), so a listening worker decides it at once instead of at its next poll. PostgreSQL delivers the
    notification only when the insert commits, so a worker never wakes for a delivery it cannot see yet.
    """
    values = insert(inbox).values(receiver=receiver, alerts=alerts, payload_json=body, received_at=now(), attempts=0)
    if session.get_bind().dialect.name == "postgresql":
        row = values.returning(inbox.c.id).cte("accepted")
        notified = select(row.c.id, func.pg_notify(INBOX_CHANNEL, "")).select_from(row)
        return int(session.execute(notified).first()[0])
    result = session.execute(values)
    return int(result.inserted_primary_key[0])


def max_inbox_id(session: Any) -> int:
    return int(session.execute(select(func.max(inbox.c.id))).scalar() or 0)


def admit_inbox(session: Any, spooled: list[Any]) -> int:
    """Move spooled deliveries (:mod:`toilless.intake.spool`) into the inbox under their own ids; returns how many
    were new. One the inbox already holds (moved before a crash, not yet removed from the spool) is not moved twice.
    """
    ids = [row.id for row in spooled]
    present = set(session.execute(select(inbox.c.id).where(inbox.c.id.in_(ids))).scalars())
    new = [row for row in spooled if row.id not in present]
    if new:
        session.execute(
            insert(inbox),
            [
                {
                    "id": row.id,
                    "receiver": row.receiver,
                    "alerts": row.alerts,
                    "payload_json": row.payload_json,
                    "received_at": row.received_at,
                    "attempts": 0,
                }
                for row in new
            ],
        )
    return len(new)


def inbox_payload(session: Any, delivery: int) -> str:
    return str(session.execute(select(inbox.c.payload_json).where(inbox.c.id == delivery)).scalar_one())


def inbox_row(session: Any, delivery: int) -> Any:
    return session.execute(select(inbox).where(inbox.c.id == delivery)).first()


def mark_inbox_done(session: Any, delivery: int, outcome_json: str) -> int:
    """Mark an undecided delivery decided; returns the rows changed (0: another worker decided it)."""
    return int(
        session.execute(
            update(inbox)
            .where(inbox.c.id == delivery, inbox.c.done_at.is_(None))
            .values(done_at=now(), outcome_json=outcome_json)
        ).rowcount
    )


def inbox_attempts(session: Any, delivery: int) -> int:
    return int(session.execute(select(inbox.c.attempts).where(inbox.c.id == delivery)).scalar_one())


def postpone_inbox(session: Any, delivery: int, *, attempts: int, not_before: float, error: str) -> None:
    session.execute(
        update(inbox).where(inbox.c.id == delivery).values(attempts=attempts, not_before=not_before, last_error=error)
    )


# -- the ledger --------------------------------------------------------------------------------------------------
def ledger_row(session: Any, key: str) -> Any:
    return session.execute(select(ledger).where(ledger.c.alert_key == key)).first()


def ledger_rows(session: Any, keys: list[str]) -> dict[str, Any]:
    """The decision rows of ``keys`` (one query; absent keys are not in the answer)."""
    if not keys:
        return {}
    return {row.alert_key: row for row in session.execute(select(ledger).where(ledger.c.alert_key.in_(keys)))}


def insert_ledger(session: Any, *, resolved: bool = False, **values: Any) -> None:
    """One decision row; ``values`` are the ledger's columns apart from the timestamps."""
    stamp = now()
    session.execute(
        insert(ledger).values(**values, created_at=stamp, updated_at=stamp, resolved_at=stamp if resolved else None)
    )


def queued_keys(session: Any) -> list[str]:
    """The queued alerts, oldest first."""
    query = select(ledger.c.alert_key).where(ledger.c.decision == "queued").order_by(ledger.c.created_at)
    return list(session.execute(query).scalars().all())


def set_decision(session: Any, key: str, decision: str, *, was: str | None = None) -> int:
    """Change an alert's decision (only from ``was`` when given); returns the rows changed."""
    query = update(ledger).where(ledger.c.alert_key == key)
    values: dict[str, Any] = {"decision": decision}
    if was is not None:
        query = query.where(ledger.c.decision == was)
        values["updated_at"] = now()
    return int(session.execute(query.values(**values)).rowcount)


def forget_decision(session: Any, key: str, decision: str) -> int:
    """Delete an alert's ledger row if its decision is still ``decision``; returns the rows deleted."""
    return int(session.execute(delete(ledger).where(ledger.c.alert_key == key, ledger.c.decision == decision)).rowcount)


def resolve_decision(session: Any, key: str, values: dict[str, Any]) -> int:
    """Note an alert resolved (compare-and-swap on ``resolved_at`` still null); returns the rows changed."""
    return int(
        session.execute(
            update(ledger).where(ledger.c.alert_key == key, ledger.c.resolved_at.is_(None)).values(**values)
        ).rowcount
    )


# -- target locks and the outbox ---------------------------------------------------------------------------------
def lock_row(session: Any, dag_id: str, target: str) -> Any:
    return session.execute(
        select(target_lock).where(target_lock.c.dag_id == dag_id, target_lock.c.target_hash == target_hash(target))
    ).first()


def lock_rows(session: Any, targets: list[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """The lock rows of ``(dag_id, target)`` pairs, keyed by the pair (one query)."""
    wanted = {(dag_id, target_hash(target)): (dag_id, target) for dag_id, target in targets}
    if not wanted:
        return {}
    query = select(target_lock).where(target_lock.c.target_hash.in_(sorted({key[1] for key in wanted})))
    return {
        wanted[(row.dag_id, row.target_hash)]: row
        for row in session.execute(query)
        if (row.dag_id, row.target_hash) in wanted
    }


def insert_lock(session: Any, *, dag_id: str, target: str, run_id: str, key: str) -> None:
    """A concurrent insert for the same target raises IntegrityError: the loser decides again."""
    session.execute(
        insert(target_lock).values(
            dag_id=dag_id,
            target_hash=target_hash(target),
            target=target,
            run_id=run_id,
            alert_key=key,
            updated_at=now(),
        )
    )


def swap_lock(session: Any, *, dag_id: str, target: str, held_by: str, run_id: str, key: str) -> int:
    """Take the target over from the run ``held_by`` (compare-and-swap); returns the rows changed."""
    return int(
        session.execute(
            update(target_lock)
            .where(
                target_lock.c.dag_id == dag_id,
                target_lock.c.target_hash == target_hash(target),
                target_lock.c.run_id == held_by,
            )
            .values(run_id=run_id, alert_key=key, updated_at=now())
        ).rowcount
    )


def enqueue(session: Any, channel: str, message_json: str) -> None:
    session.execute(insert(outbox).values(channel=channel, message_json=message_json, created_at=now(), attempts=0))


def due_outbox_ids(session: Any, moment: float, limit: int) -> list[int]:
    """Outbox messages unclaimed (or whose claim expired) at ``moment``, oldest first."""
    query = select(outbox.c.id).where(_outbox_due(moment)).order_by(outbox.c.id).limit(limit)
    return list(session.execute(query).scalars().all())


def claim_outbox(session: Any, ids: list[int], moment: float, claim: float) -> None:
    """Mark the still-due rows among ``ids`` as claimed with ``claim`` (a value no other pass uses)."""
    session.execute(update(outbox).where(outbox.c.id.in_(ids), _outbox_due(moment)).values(claimed_until=claim))


def claimed_outbox(session: Any, ids: list[int], claim: float) -> list[Any]:
    query = select(outbox).where(outbox.c.id.in_(ids), outbox.c.claimed_until == claim).order_by(outbox.c.id)
    return list(session.execute(query).all())


def retry_outbox(session: Any, row_id: int, *, attempts: int, not_before: float, error: str) -> None:
    query = update(outbox).where(outbox.c.id == row_id)
    session.execute(query.values(attempts=attempts, claimed_until=not_before, last_error=error))


def delete_outbox(session: Any, ids: list[int]) -> None:
    session.execute(delete(outbox).where(outbox.c.id.in_(ids)))


def _outbox_due(moment: float) -> Any:
    return or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < moment)


def purge_inbox_before(session: Any, cutoff: float) -> int:
    """Delete deliveries decided before ``cutoff``; returns how many."""
    return int(session.execute(delete(inbox).where(inbox.c.done_at < cutoff)).rowcount)


def purge_ledger_before(session: Any, cutoff: float) -> int:
    """Delete decisions last changed before ``cutoff``, except queued ones; returns how many."""
    query = delete(ledger).where(ledger.c.updated_at < cutoff, ledger.c.decision != "queued")
    return int(session.execute(query).rowcount)


# -- Airflow's own tables (read only) ----------------------------------------------------------------------------
def run_state(session: Any, dag_id: str, run_id: str) -> Any:
    from airflow.models.dagrun import DagRun

    return session.scalar(select(DagRun.state).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))


def run_states(session: Any, runs: list[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """The state of each existing run among ``(dag_id, run_id)`` pairs (one query; absent runs are not in it)."""
    from airflow.models.dagrun import DagRun

    wanted = set(runs)
    if not wanted:
        return {}
    query = select(DagRun.dag_id, DagRun.run_id, DagRun.state).where(
        DagRun.run_id.in_(sorted({run_id for _, run_id in wanted}))
    )
    return {(row.dag_id, row.run_id): row.state for row in session.execute(query) if (row.dag_id, row.run_id) in wanted}


def run_exists(session: Any, dag_id: str, run_id: str) -> bool:
    from airflow.models.dagrun import DagRun

    return session.scalar(select(DagRun.id).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)) is not None


def dag_model(session: Any, dag_id: str, *, live: bool = False) -> Any:
    """Airflow's DagModel row (``live``: only if its file is not stale)."""
    from airflow.models.dag import DagModel

    query = select(DagModel).where(DagModel.dag_id == dag_id)
    if live:
        query = query.where(~DagModel.is_stale)
    return session.scalar(query)


def latest_dag_version_id(session: Any, dag_id: str) -> Any:
    """The id of the newest serialized version of ``dag_id`` (None if it has none yet)."""
    from airflow.models.dag_version import DagVersion
    from airflow.models.serialized_dag import SerializedDagModel

    return session.scalar(
        select(SerializedDagModel.dag_version_id)
        .join(DagVersion, SerializedDagModel.dag_version_id == DagVersion.id)
        .where(SerializedDagModel.dag_id == dag_id)
        .order_by(DagVersion.version_number.desc())
        .limit(1)
    )


def claim_due(session: Any, rows: int, only: int | None = None) -> list[Any]:
    """Run :func:`claim_inbox` in this session: the due deliveries, locked until it commits."""
    return list(session.execute(claim_inbox(session.get_bind().dialect.name, rows, now(), only)).all())
