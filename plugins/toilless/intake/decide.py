"""The worker's decision for one alert, in the caller's transaction: start its run, skip, queue, notify only,
note it resolved, or say that no runbook (or a paused / missing one) covers it; with its ack in the outbox.

The ledger row written here is what makes every decision happen once (see :mod:`toilless.intake.store`).
"""

from __future__ import annotations

import json
from typing import Any

from toilless.intake import decisions, store
from toilless.intake.core import ACTIVE_STATES, ServiceCore
from toilless.intake.errors import _AlreadyStarted, _Contended, _RunExists
from toilless.intake.plans import Outcome, Plan
from toilless.intake.settings import IntakeSettings


class Decide(ServiceCore):
    def _act(self, plan: Plan, settings: IntakeSettings) -> Outcome:
        alert = plan.alert
        if plan.route is None and alert.status == "resolved":
            return Outcome(alert.alertname, alert.fingerprint, "ignored", detail="resolved; no runbook")
        return self._write(lambda session: self._decide(session, plan, settings))

    def _decide(self, session: Any, plan: Plan, settings: IntakeSettings) -> Outcome:
        alert = plan.alert
        if plan.route is None:
            if alert.status == "resolved":
                return Outcome(alert.alertname, alert.fingerprint, "ignored", detail="resolved; no runbook")
            return self._no_runbook(session, plan)
        if alert.status == "resolved":
            return self._resolved(session, plan, settings)
        if plan.blocked:
            return self._blocked(session, plan)
        return self._firing(session, plan, settings)

    def _blocked(self, session: Any, plan: Plan) -> Outcome:
        """The routed DAG is paused or missing: say so once for this alert; no run, no target held."""
        alert = plan.alert
        outcome = Outcome(alert.alertname, alert.fingerprint, plan.blocked, plan.dag_id, "", plan.target)
        row = self._ledger_row(session, plan.key)
        if row is not None:
            outcome.status, outcome.detail = "duplicate", f"already {row.decision}"
            return outcome
        self._insert_ledger(session, plan, decision=plan.blocked, run_id=None)
        if plan.blocked == "paused":
            message = decisions.ack_paused(plan.facts, dag_id=plan.dag_id, target=plan.target)
            outcome.detail = "runbook paused: nothing will run"
        elif plan.blocked == "rejected":
            reason = f"refused: {plan.blocked_why}"
            message = decisions.ack_not_started(plan.facts, dag_id=plan.dag_id, target=plan.target, reason=reason)
            outcome.detail = reason
        else:
            message = decisions.ack_missing(plan.facts, dag_id=plan.dag_id, target=plan.target, why=plan.blocked_why)
            outcome.detail = f"runbook missing: {plan.blocked_why}"
        self._enqueue(session, plan.channel, message)
        return outcome

    def _no_runbook(self, session: Any, plan: Plan) -> Outcome:
        alert = plan.alert
        outcome = Outcome(alert.alertname, alert.fingerprint, "no_runbook")
        if self._ledger_row(session, plan.key) is not None:
            outcome.status = "duplicate"
            return outcome
        self._insert_ledger(session, plan, decision="no_runbook", run_id=None)
        self._enqueue(session, plan.channel, decisions.ack_no_runbook(plan.facts))
        return outcome

    def _firing(self, session: Any, plan: Plan, settings: IntakeSettings) -> Outcome:
        assert plan.route is not None
        assert plan.mode is not None
        alert = plan.alert
        outcome = Outcome(alert.alertname, alert.fingerprint, "", plan.dag_id, plan.run_id, plan.target)
        row = self._ledger_row(session, plan.key)
        if row is not None and row.decision in ("paused", "missing", "rejected"):
            # Told before that the DAG could not run it; it can now (unpaused, restored): decide afresh, once.
            changed = store.forget_decision(session, plan.key, row.decision)
            if changed != 1:
                raise _Contended
            if (view := self._view()) is not None:
                view.forgot(plan.key)
            row = None
        if row is not None:
            if row.decision == "resolved":
                outcome.status = "duplicate"
                outcome.detail = "resolved before this firing notification arrived: nothing started"
                return outcome
            if row.decision == "queued":
                outcome.status = "queued"
                outcome.detail = "already queued"
                return outcome
            outcome.status = "duplicate"
            outcome.detail = f"already {row.decision}"
            outcome.run_id = row.run_id or ""
            return outcome
        run_link = self._run_link(plan.dag_id, plan.run_id, settings)
        if not plan.mode.start:
            self._insert_ledger(session, plan, decision="notify_only", run_id=None)
            self._enqueue(
                session,
                plan.channel,
                decisions.ack_not_started(plan.facts, dag_id=plan.dag_id, target=plan.target, reason=plan.mode.note),
            )
            outcome.status, outcome.run_id, outcome.detail = "notify_only", "", plan.mode.note
            return outcome
        holder, holder_state = self._holder(session, plan.dag_id, plan.target)
        if holder is not None and holder_state in ACTIVE_STATES:
            queue = plan.route.on_busy == "queue"
            reason = f"target already has run `{holder.run_id}` ({holder_state}); " + (
                "queued: starts when that run ends" if queue else "skipped: that remediation covers it"
            )
            payload_json = json.dumps(
                {
                    "alert": alert.model_dump(mode="json"),
                    "external_url": plan.external_url,
                    "route": plan.route.name,
                }
            )
            self._insert_ledger(
                session,
                plan,
                decision="queued" if queue else "skipped",
                run_id=plan.run_id if queue else None,
                payload_json=payload_json if queue else None,
            )
            self._enqueue(
                session,
                plan.channel,
                decisions.ack_not_started(
                    plan.facts,
                    dag_id=plan.dag_id,
                    target=plan.target,
                    reason=reason,
                    run_link=self._run_link(plan.dag_id, holder.run_id, settings),
                ),
            )
            outcome.status = "queued" if queue else "skipped"
            outcome.run_id = plan.run_id if queue else ""
            outcome.detail = f"busy with {holder.run_id}"
            return outcome
        self._claim(session, plan.dag_id, plan.target, holder, plan.run_id, plan.key)
        self._insert_ledger(session, plan, decision="started", run_id=plan.run_id)
        try:
            paused = self._trigger(session, plan.dag_id, plan.run_id, plan.conf)
        except _RunExists:
            # The run exists although this alert had no ledger row (created through the REST API with the same
            # deterministic id, or the ledger was cleaned): it is started, once.
            outcome.status, outcome.detail = "duplicate", "run already exists"
            raise _AlreadyStarted(outcome) from None
        self._enqueue(
            session,
            plan.channel,
            decisions.ack_started(
                plan.facts,
                dag_id=plan.dag_id,
                run_id=plan.run_id,
                run_link=run_link,
                target=plan.target,
                note=plan.mode.note,
                paused=paused,
            ),
        )
        outcome.status = "started"
        if plan.mode.dry_run:
            outcome.detail = "dry run"
        return outcome

    def _resolved(self, session: Any, plan: Plan, settings: IntakeSettings) -> Outcome:
        alert = plan.alert
        outcome = Outcome(alert.alertname, alert.fingerprint, "resolved", plan.dag_id, "", plan.target)
        row = self._ledger_row(session, plan.key)
        if row is None:
            # Out of order (Alertmanager HA, retries): remember it, so its late firing notification starts nothing.
            self._insert_ledger(session, plan, decision="resolved", run_id=None, resolved=True)
            outcome.detail = "nothing was started for it; a late firing notification will start nothing"
            return outcome
        if row.resolved_at is not None:
            outcome.detail = "already noted"
            return outcome
        state = self._run_state(session, plan.dag_id, row.run_id) if row.run_id else None
        values: dict[str, Any] = {"resolved_at": store.now(), "updated_at": store.now()}
        notice_state = ""
        if row.decision == "queued":
            values["decision"] = "cancelled"
            notice_state = "queued (now cancelled: it will not start)"
        elif row.decision == "started" and state in ACTIVE_STATES:
            notice_state = f"still {state}"
        changed = store.resolve_decision(session, plan.key, values)
        if changed != 1:
            raise _Contended
        if (view := self._view()) is not None:
            view.decided(plan.key, resolved_at=values["resolved_at"], decision=values.get("decision", row.decision))
        if notice_state:
            self._enqueue(
                session,
                plan.channel,
                decisions.resolved_notice(
                    plan.facts,
                    dag_id=plan.dag_id,
                    run_id=row.run_id,
                    state=notice_state,
                    run_link=self._run_link(plan.dag_id, row.run_id, settings),
                ),
            )
            outcome.detail = f"run {row.run_id} {notice_state}; noted in Slack"
            outcome.run_id = row.run_id
        else:
            outcome.detail = f"decision was {row.decision}; nothing running"
        return outcome
