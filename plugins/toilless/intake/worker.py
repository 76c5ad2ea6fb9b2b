"""Background work of the intake: decide accepted deliveries (the inbox), post the Slack outbox and start queued
alerts.

It runs as its own process, ``python -m toilless.intake.worker`` (started by ``make run`` next to Airflow's
components, and by the deployment as the ``airflow-intake-worker`` service), not in the API server: the API server
answers the webhook (validate + one insert) and also serves the UI and the Execution API every running task calls;
deciding alerts there took the same GIL, and the webhook's p99 grew with every decision. With ``worker: api_server``
in alert_intake.yaml the API server runs this worker as a daemon thread instead (one process fewer, slower answers
under load).

Several workers may run at once (processes, replicas, the thread): inbox rows are claimed with ``FOR UPDATE SKIP
LOCKED`` on PostgreSQL (see :meth:`toilless.intake.service.IntakeService.drain_inbox`), every decision is guarded by
the ledger's primary keys, and each outbox row is claimed with a compare-and-swap UPDATE before it is posted, so a
message goes out once. A message that fails to post stays in the outbox and is retried with backoff:
acknowledgements are never dropped.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from toilless.incidents import intake as incident_record
from toilless.intake import store
from toilless.intake.store import now

if TYPE_CHECKING:
    from toilless.intake.service import IntakeService

log = logging.getLogger(__name__)

CLAIM_SECONDS = 60.0
MAX_BACKOFF_SECONDS = 300.0
OUTBOX_BATCH = 100
#: Decided deliveries are kept this long for ``GET /toilless/deliveries/{id}``; their decisions stay in the ledger.
INBOX_RETENTION_HOURS = 24.0


def post_to_slack(channel: str, message: dict[str, Any]) -> None:
    """Post through the named channel's Slack webhook Connection (toilless.common.reporting)."""
    from toilless.common.reporting import post_message

    post_message(channel, message["text"], blocks=message.get("blocks"))


def deliver_outbox(poster: Callable[[str, dict[str, Any]], None] = post_to_slack, limit: int = OUTBOX_BATCH) -> int:
    """Post due outbox messages; returns how many were delivered.

    Claimed and removed in batches: one UPDATE claims up to ``limit`` rows and one DELETE removes the ones
    posted, instead of three write transactions per message. During an alert storm on SQLite those writes
    competed with the intake and the scheduler for the single write lock. Each claim carries a value no other
    pass uses (the claim deadline plus a random fraction), so a process posts only the rows it claimed.
    """
    from airflow import settings as airflow_settings
    from airflow.utils.session import create_session

    store.ensure_tables(airflow_settings.engine)
    moment = now()
    with create_session(scoped=False) as session:
        ids = store.due_outbox_ids(session, moment, limit)
    if not ids:
        return 0
    claim = moment + CLAIM_SECONDS + random.random() / 1000  # a claim marker, not a secret
    with create_session(scoped=False) as session:
        store.claim_outbox(session, ids, moment, claim)
    with create_session(scoped=False) as session:
        rows = store.claimed_outbox(session, ids, claim)
    delivered: list[int] = []
    told: list[tuple[str, str, str, str]] = []  # (incident, channel, text, dedupe) of the posted acks
    try:
        for row in rows:
            try:
                message = json.loads(row.message_json)
                poster(row.channel, message)
            except Exception as err:
                backoff = min(MAX_BACKOFF_SECONDS, 2.0 ** min(row.attempts + 1, 9))
                log.warning(
                    "Slack post to %s failed (attempt %d), retrying in %.0fs: %s",
                    row.channel,
                    row.attempts + 1,
                    backoff,
                    err,
                )
                with create_session(scoped=False) as session:
                    store.retry_outbox(
                        session, row.id, attempts=row.attempts + 1, not_before=now() + backoff, error=str(err)[:1000]
                    )
                continue
            delivered.append(row.id)
            if message.get("incident"):
                told.append((str(message["incident"]), row.channel, str(message.get("text") or ""), f"{row.id}"))
    finally:
        # Also when the pass dies half-way: what was posted is not posted again.
        if delivered:
            with create_session(scoped=False) as session:
                store.delete_outbox(session, delivered)
        if told:
            incident_record.acks_sent(told)  # one write for the batch; never raises
    return len(delivered)


def purge_inbox(retention_hours: float) -> int:
    """Forget decided deliveries older than ``retention_hours`` (their decisions stay in the ledger)."""
    from airflow.utils.session import create_session

    cutoff = now() - retention_hours * 3600
    with create_session(scoped=False) as session:
        return store.purge_inbox_before(session, cutoff)


def purge_ledger(retention_days: float) -> int:
    """Forget decisions older than ``retention_days`` (queued ones are kept until they start or resolve).

    A re-send of such an old alert still finds its run through the run id's unique constraint; only a skipped or
    no-runbook decision could be made again, after the retention period.
    """
    from airflow.utils.session import create_session

    cutoff = now() - retention_days * 86400
    with create_session(scoped=False) as session:
        return store.purge_ledger_before(session, cutoff)


class IntakeWorker:
    """Inbox, queue and outbox every ``interval`` seconds (at once after :meth:`wake`, or while work is left).

    :meth:`run` loops in the calling thread (the worker process); :meth:`ensure_started` in a daemon thread (the
    ``worker: api_server`` fallback, and tests).
    """

    def __init__(
        self,
        start_queued: Callable[[], int],
        *,
        drain_inbox: Callable[[], int] = lambda: 0,
        poster: Callable[[str, dict[str, Any]], None] = post_to_slack,
        interval: float = 5.0,
        retention_days: Callable[[], float] = lambda: 30.0,
    ) -> None:
        self._retention_days = retention_days
        self._last_purge = 0.0
        self._start_queued = start_queued
        self._drain_inbox = drain_inbox
        #: Whether the last pass left work behind (a storm): the loop then goes on without waiting.
        self._busy = False
        self._poster = poster
        self._interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def ensure_started(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._loop, name="toilless-intake-worker", daemon=True)
                self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def run(self) -> None:
        """Loop in this thread until :meth:`request_stop` (a signal handler may call it)."""
        self._stop.clear()
        self._loop()

    def request_stop(self) -> None:
        """Ask the loop to end after the current pass (each pass's decisions are transactions: none is cut)."""
        self._stop.set()
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def run_once(self) -> tuple[int, int]:
        """One pass: (queued alerts started, messages delivered).

        Accepted deliveries first (each pass drains for a few seconds at most), then the queue, then the outbox.
        """
        from airflow import settings as airflow_settings

        from toilless.intake.store import ensure_tables

        # The worker starts with the app, before any delivery created the intake's tables on a new metadata DB.
        ensure_tables(airflow_settings.engine)
        drained = self._drain_inbox()
        started = self._start_queued()
        delivered = deliver_outbox(self._poster)
        self._busy = drained > 0 or delivered >= OUTBOX_BATCH
        if now() - self._last_purge > 3600:
            self._last_purge = now()
            days = self._retention_days()
            purged = purge_ledger(days)
            if purged:
                log.info("Alert intake forgot %d decisions older than %s days", purged, days)
            purged = purge_inbox(INBOX_RETENTION_HOURS)
            if purged:
                log.info("Alert intake forgot %d decided deliveries", purged)
        return started, delivered

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.run_once()
            except Exception:
                self._busy = False
                log.exception("Alert intake worker pass failed; retrying")
            if not self._busy:
                self._wake.wait(self._interval)


class InboxListener:
    """PostgreSQL ``LISTEN`` on the inbox channel in a daemon thread: every accepted delivery wakes the worker.

    Why: the worker otherwise finds a delivery at its next poll (``worker_poll_seconds``), so every delivery waited
    half a poll interval on average before its decision started, and an idle worker's polls are its only load on the
    DB. The webhook's insert notifies in the same statement (:func:`toilless.intake.store.insert_inbox`). Polling
    stays as the fallback: a notification lost with a dropped connection delays a delivery by one poll, never more.
    The connection is the listener's own (detached from Airflow's pool), in autocommit.
    """

    def __init__(self, wake: Callable[[], None], engine: Any) -> None:
        self._wake = wake
        self._engine = engine
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="toilless-intake-listen", daemon=True)
        #: Set once the first LISTEN is in place (tests, and the log).
        self.listening = threading.Event()

    def start(self) -> InboxListener:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _connect(self) -> Any:
        raw = self._engine.raw_connection()
        connection = raw.driver_connection
        raw.detach()  # the listener's own for as long as it lives; never handed back to the pool mid-LISTEN
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"LISTEN {store.INBOX_CHANNEL}")
        return connection

    def _loop(self) -> None:
        import select

        failures = 0
        while not self._stop.is_set():
            connection = None
            try:
                connection = self._connect()
                if not hasattr(connection, "poll") or not hasattr(connection, "notifies"):
                    log.info("Alert intake worker: the DB driver has no psycopg2-style notifications; polling only")
                    return
                failures = 0
                self.listening.set()
                self._wake()  # whatever arrived while not listening is found by this pass
                while not self._stop.is_set():
                    if select.select([connection], [], [], 1.0) == ([], [], []):
                        continue
                    connection.poll()
                    if connection.notifies:
                        connection.notifies.clear()
                        self._wake()
            except Exception as err:
                failures += 1
                log.warning("Alert intake worker: LISTEN on the inbox failed (polling meanwhile): %s", err)
                self._stop.wait(min(30.0, 2.0**failures))
            finally:
                if connection is not None:
                    try:
                        connection.close()
                    except Exception:
                        log.debug("Closing the LISTEN connection failed", exc_info=True)


def start_inbox_listener(wake: Callable[[], None]) -> InboxListener | None:
    """A running :class:`InboxListener` on PostgreSQL; None on another DB (the worker then only polls)."""
    from airflow import settings as airflow_settings

    if airflow_settings.engine.dialect.name != "postgresql":
        return None
    return InboxListener(wake, airflow_settings.engine).start()


def resolve_mode(intake: dict[str, Any]) -> str:
    """``process`` or ``api_server``: the ``worker`` setting, where ``auto`` (the default) is ``process`` on
    PostgreSQL and ``api_server`` on SQLite.

    SQLite has one writer at a time. In the API server, the webhook's inserts and the decisions take turns on the
    process's own lock; from two processes they waited on SQLite's lock instead, behind whole decision transactions
    and the scheduler's writes (measured: 1,900 of 10,000 storm alerts answered within 60 s, against 8,050).
    """
    mode = str(intake.get("worker", "auto"))
    if mode != "auto":
        return mode
    from airflow import settings as airflow_settings

    return "api_server" if airflow_settings.engine.dialect.name == "sqlite" else "process"


def build_worker(service: IntakeService, *, interval: float = 5.0) -> IntakeWorker:
    """The worker over ``service``'s drain and queue, with the configured ledger retention."""
    return IntakeWorker(
        service.start_queued,
        drain_inbox=service.drain_inbox,
        interval=interval,
        retention_days=lambda: float(service.provider.get().intake.get("ledger_retention_days", 30)),
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m toilless.intake.worker``: the intake's worker as its own process, until SIGTERM / SIGINT.

    Needs Airflow's configuration (``AIRFLOW_HOME`` / ``AIRFLOW__*``: the metadata DB, Connections) like any Airflow
    component, and ``plugins/`` on ``PYTHONPATH``. Several may run at once (see the module docstring).
    """
    parser = argparse.ArgumentParser(prog="python -m toilless.intake.worker", description=main.__doc__)
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=None,
        help="how often an idle worker looks for new deliveries (default: worker_poll_seconds in alert_intake.yaml)",
    )
    parser.add_argument("--once", action="store_true", help="one pass (inbox, queue, outbox), then exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from toilless.intake.service import IntakeService

    service = IntakeService()
    intake = service.provider.get().intake
    poll = args.poll_seconds if args.poll_seconds is not None else float(intake.get("worker_poll_seconds", 0.5))
    worker = build_worker(service, interval=poll)
    if resolve_mode(intake) == "api_server":
        # Started anyway (make run starts it whatever the DB): stay up, idle, so nothing restarts it in a loop.
        log.info(
            "Alert intake worker: the API server decides (worker: %s); this process stays idle",
            intake.get("worker", "auto"),
        )
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        signal.signal(signal.SIGINT, lambda *_: stopped.set())
        stopped.wait()
        return 0
    if args.once:
        started, delivered = worker.run_once()
        log.info("Alert intake worker: one pass, %d queued alerts started, %d messages posted", started, delivered)
        return 0

    def stop(signum: int, _frame: Any) -> None:
        log.info("Alert intake worker: %s received, stopping after this pass", signal.Signals(signum).name)
        worker.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    listener = start_inbox_listener(worker.wake)
    log.info(
        "Alert intake worker started (pid %d, polls every %.2f s when idle%s)",
        os.getpid(),
        poll,
        ", and wakes on every accepted delivery (LISTEN)" if listener else "",
    )
    try:
        worker.run()
    finally:
        if listener is not None:
            listener.stop()
    log.info("Alert intake worker stopped")
    return 0


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy: one IntakeWorker class per process.
    from toilless.intake.worker import main as _main

    sys.exit(_main())
