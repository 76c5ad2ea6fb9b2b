"""The worker's path: drain the inbox (decide accepted deliveries, each in ONE transaction with its ledger rows,
runs, acks and the inbox row marked done), report a delivery's fate, and start queued alerts whose target is free.

A delivery whose decision fails is kept and retried with backoff, never dropped (see :mod:`toilless.intake.store`).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from toilless.incidents import intake as incident_record
from toilless.intake import decisions, routing, store
from toilless.intake.accept import Accept
from toilless.intake.batch import BatchView
from toilless.intake.core import ACTIVE_STATES
from toilless.intake.decide import Decide
from toilless.intake.errors import _BatchConflict, _Contended, _RunExists
from toilless.intake.models import Alert, WebhookPayload
from toilless.intake.plans import Outcome, Plan
from toilless.intake.settings import IntakeSettings, facts_for

log = logging.getLogger(__name__)

#: Inbox rows (deliveries) decided in one transaction on PostgreSQL, and at most this many alerts in it.
DRAIN_ROWS_PER_TRANSACTION = 10
DRAIN_ALERTS_PER_TRANSACTION = 500
#: Spooled deliveries moved into the inbox per transaction (SQLite; a storm's minute is about 200).
SPOOL_ROWS_PER_MOVE = 500


class Drain(Accept, Decide):
    def drain_inbox(self, *, limit: int = 1000, budget_seconds: float = 5.0) -> int:
        """Decide accepted deliveries, oldest first, in transactions that also mark their inbox rows done.

        Returns how many deliveries were decided in this pass (at most about ``limit``, for at most about
        ``budget_seconds``, so the worker also gets to the outbox and the queue during a storm). A delivery whose
        decision fails is kept and retried later with backoff (never dropped); the others go on.
        """
        settings = self.provider.get()
        self._admit_spooled()
        batch = self._rows_per_transaction()
        drained = 0
        deadline = time.monotonic() + budget_seconds
        while drained < limit and time.monotonic() < deadline:
            decided, attempted = self._drain_batch(settings, batch)
            if not attempted:
                break
            drained += decided
        return drained

    def _admit_spooled(self, limit: int = SPOOL_ROWS_PER_MOVE) -> int:
        """Move the webhook's spooled deliveries into the inbox (SQLite), committed there before the spool forgets
        them. Returns how many the inbox did not hold yet."""
        spool = self._spool()
        if spool is None:
            return 0
        spooled = spool.pending(limit)
        if not spooled:
            return 0
        moved = self._write(lambda session: store.admit_inbox(session, spooled))
        spool.remove([row.id for row in spooled])
        return int(moved)

    @staticmethod
    def _rows_per_transaction() -> int:
        """Deliveries decided per transaction: several on PostgreSQL (fewer commits, and the repeats of one target,
        which Alertmanager spreads over neighbouring deliveries, meet in one transaction instead of racing in two
        workers); one on SQLite, whose single write lock the scheduler of the running runbooks waits for."""
        from airflow import settings as airflow_settings

        return 1 if airflow_settings.engine.dialect.name == "sqlite" else DRAIN_ROWS_PER_TRANSACTION

    def _drain_batch(self, settings: IntakeSettings, rows: int, only: int | None = None) -> tuple[int, int]:
        """(deliveries decided, deliveries attempted) in one transaction of up to ``rows`` deliveries."""
        claimed: list[int] = []
        try:
            try:
                decided = self._write(
                    lambda session, claimed=claimed: self._drain_next(session, settings, claimed, rows, only),
                    batch=True,
                )
                return decided, decided
            except _BatchConflict:
                # Another worker decided some of these alerts meanwhile: decide each alone (the ledger says which).
                for delivery in claimed:
                    self._drain_alone(delivery, settings)
                return len(claimed), len(claimed)
        except Exception as err:
            if not claimed:
                raise
            if len(claimed) > 1:
                # One delivery of the batch fails: decide them one by one, so only that one waits for a retry.
                results = [self._drain_batch(settings, 1, only=delivery) for delivery in claimed]
                return sum(decided for decided, _ in results), len(claimed)
            self._postpone(claimed[-1], err)
            return 0, 1

    def _drain_next(
        self, session: Any, settings: IntakeSettings, claimed: list[int], rows: int, only: int | None
    ) -> int:
        claimed.clear()  # a retry of this transaction (DB busy) claims afresh
        found = store.claim_due(session, rows, only)
        total = 0
        # The batch's DAGs are looked up once (same transaction, same versions), its deliveries planned first, then
        # the ledger rows, target locks and run states of all its alerts read in three queries (the BatchView),
        # then decided in order.
        self._delivery.dags = {}
        try:
            batch: list[tuple[int, list[Plan]]] = []
            for row in found:
                if claimed and total + row.alerts > DRAIN_ALERTS_PER_TRANSACTION:
                    break
                total += row.alerts
                claimed.append(row.id)
                payload = WebhookPayload.model_validate_json(row.payload_json)
                batch.append((row.id, self.plan(payload, settings, strict=False, session=session)))
            self._delivery.view = BatchView.load(session, [plan for _, plans in batch for plan in plans])
            decided: list[tuple[list[Plan], list[Outcome]]] = []
            for delivery, plans in batch:
                outcomes = [self._decide(session, plan, settings) for plan in plans]
                decided.append((plans, outcomes))
                self._mark_done(session, delivery, outcomes)
            # The incident events of the whole transaction in ONE write to the incident DB (one per delivery made a
            # storm's worker wait ten times per transaction for that DB, which the running tasks also write), still
            # before this transaction commits: a crash in between loses no event, and the redo (or the alert-by-alert
            # fallback) records nothing twice (event ids are derived from the facts). Never raises.
            if decided:
                incident_record.intake_decided(
                    [plan for plans, _ in decided for plan in plans],
                    [outcome for _, outcomes in decided for outcome in outcomes],
                )
        finally:
            self._delivery.dags = None
            self._delivery.view = None
        return len(claimed)

    def _drain_alone(self, delivery: int, settings: IntakeSettings) -> int:
        """Decide one delivery alert by alert (each its own transaction, with every race handled), then mark it."""
        from airflow.utils.session import create_session

        with create_session(scoped=False) as session:
            body = store.inbox_payload(session, delivery)
        payload = WebhookPayload.model_validate_json(body)
        self._delivery.dags = {}
        try:
            plans = self.plan(payload, settings, strict=False)
            outcomes = [self._act(plan, settings) for plan in plans]
            incident_record.intake_decided(plans, outcomes)
        finally:
            self._delivery.dags = None
        # A crash before this mark redoes the delivery: every decision above is in the ledger, so it redoes nothing.
        self._write(lambda session: self._mark_done(session, delivery, outcomes, strict=False))
        return delivery

    @staticmethod
    def _mark_done(session: Any, delivery: int, outcomes: list[Outcome], *, strict: bool = True) -> None:
        changed = store.mark_inbox_done(session, delivery, json.dumps([outcome.as_dict() for outcome in outcomes]))
        if strict and changed != 1:
            raise _Contended  # another worker decided it meanwhile: roll back, decide alert by alert

    def _postpone(self, delivery: int, err: Exception) -> None:
        """A delivery whose drain failed: kept (never dropped), retried with backoff, logged."""
        log.error(
            "Alert intake could not decide accepted delivery %s; retrying it later: %s", delivery, err, exc_info=err
        )

        def note(session: Any) -> None:
            attempts = store.inbox_attempts(session, delivery) + 1
            backoff = min(300.0, 2.0 ** min(attempts, 9))
            store.postpone_inbox(
                session, delivery, attempts=attempts, not_before=store.now() + backoff, error=str(err)[:1000]
            )

        try:
            self._write(note)
        except Exception:
            log.exception("Could not postpone delivery %s", delivery)

    def delivery(self, delivery: int) -> dict[str, Any] | None:
        """What became of an accepted delivery: pending, or done with each alert's decision."""
        from airflow.utils.session import create_session

        # The spool first: the worker commits a delivery to the inbox before it leaves the spool, so read in this
        # order, a delivery being moved is found in one or the other.
        spool = self._spool()
        if spool is not None and spool.get(delivery) is not None:
            return {"delivery": delivery, "status": "pending", "attempts": 0}
        with create_session(scoped=False) as session:
            row = store.inbox_row(session, delivery)
        if row is None:
            return None
        if row.done_at is None:
            answer: dict[str, Any] = {"delivery": delivery, "status": "pending", "attempts": row.attempts}
            if row.last_error:
                answer["last_error"] = row.last_error
            return answer
        results = json.loads(row.outcome_json or "[]")
        counts: dict[str, int] = {}
        for result in results:
            counts[result["status"]] = counts.get(result["status"], 0) + 1
        return {
            "delivery": delivery,
            "status": "done",
            "received_at": row.received_at,
            "done_at": row.done_at,
            "counts": counts,
            "results": results,
        }

    # -- queued alerts (called by the worker) -------------------------------------------------------------------
    def start_queued(self) -> int:
        """Start queued alerts whose target is free now. Returns how many started."""
        from airflow.utils.session import create_session

        with create_session(scoped=False) as session:
            keys = store.queued_keys(session)
        if not keys:
            return 0
        settings = self.provider.get()
        started = 0
        for key in keys:
            try:
                if self._write(lambda session, key=key: self._start_one_queued(session, key, settings)):
                    started += 1
            except Exception:
                log.exception("Could not start queued alert %s", key)
        return started

    def _start_one_queued(self, session: Any, key: str, settings: IntakeSettings) -> bool:
        row = self._ledger_row(session, key)
        if row is None or row.decision != "queued":
            return False
        holder, state = self._holder(session, row.dag_id, row.target)
        if holder is not None and state in ACTIVE_STATES:
            return False
        model = self._dag_model(row.dag_id, session)
        if model is None or model.is_paused or model.is_stale:
            return False  # stays queued, holding nothing, until the DAG can run again
        stored = json.loads(row.payload_json or "{}")
        alert = Alert.model_validate(stored["alert"])
        route = next((r for r in settings.routes.routes if r.name == stored.get("route")), None)
        if route is None or route.dag_id != row.dag_id:
            route = settings.routes.match(alert.labels)
        if route is None or route.dag_id != row.dag_id:
            log.warning("Queued alert %s: its route is gone; dropping it from the queue", key)
            store.set_decision(session, key, "cancelled")
            return False
        mode = decisions.run_mode(route, self.clock(), settings.window)
        facts, channel = facts_for(alert, stored.get("external_url", ""), settings, route)
        if not mode.start:
            return False  # notify-only maintenance: stays queued until the window closes
        conf = routing.build_conf(route, alert, stored.get("external_url", ""), dry_run=mode.dry_run)
        self._claim(session, row.dag_id, row.target, holder, row.run_id, key)
        changed = store.set_decision(session, key, "started", was="queued")
        if changed != 1:
            raise _Contended
        try:
            paused = self._trigger(session, row.dag_id, row.run_id, conf)
        except _RunExists:
            return False  # started already (another process won); the lock and ledger now say so
        incident_record.queued_started(alert, dag_id=row.dag_id, run_id=row.run_id, target=row.target)
        self._enqueue(
            session,
            channel,
            decisions.queued_started(
                facts,
                dag_id=row.dag_id,
                run_id=row.run_id,
                target=row.target,
                note=mode.note,
                run_link=self._run_link(row.dag_id, row.run_id, settings),
            ),
        )
        if paused:
            log.info("Queued run %s of paused DAG %s waits for unpause", row.run_id, row.dag_id)
        return True
