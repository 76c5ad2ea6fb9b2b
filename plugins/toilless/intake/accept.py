"""The webhook's path: validate a delivery completely, write it to the inbox in ONE insert, answer "accepted".

:meth:`Accept.plan` routes every alert, builds its conf and validates it against the DAG's Params (the same check
Airflow's REST API runs); a problem is a 4xx and nothing is written. The worker decides the alerts later
(:mod:`toilless.intake.drain`), re-using :meth:`Accept.plan` with ``strict=False``.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any

from toilless.intake import decisions, routing, store, validation
from toilless.intake.core import ServiceCore
from toilless.intake.errors import Rejected
from toilless.intake.models import WebhookPayload
from toilless.intake.params import validate_conf
from toilless.intake.plans import Plan
from toilless.intake.settings import IntakeSettings, facts_for

log = logging.getLogger(__name__)


class Accept(ServiceCore):
    # -- entry point: the durable inbox ---------------------------------------------------------------------------
    def accept(
        self, payload: WebhookPayload, raw: Any = None, *, stages: dict[str, float] | None = None
    ) -> dict[str, Any]:
        """Validate everything that decides a 4xx, then write the delivery to the inbox in ONE insert and answer.

        The alerts are decided by the worker (:meth:`~toilless.intake.drain.Drain.drain_inbox`), not here: the HTTP answer waits for no
        ``create_dagrun``, no ledger lock and no Slack. Raises Rejected (4xx, nothing written) or Unavailable (the
        insert failed: 5xx, Alertmanager retries, and the ledger makes a second copy of the delivery harmless).
        ``stages`` (the app's timings, :mod:`toilless.intake.timings`) gets ``plan`` and ``insert`` in seconds.
        """
        began = time.perf_counter()
        settings = self.provider.get()
        self._delivery.dags = {}
        try:
            plans = self.plan(payload, settings)
        finally:
            self._delivery.dags = None
        body = json.dumps(raw) if raw is not None else payload.model_dump_json()
        planned = time.perf_counter()
        spool = self._spool()
        if spool is not None:  # SQLite: not behind Airflow's writers at the metadata DB's one lock
            delivery = spool.put(receiver=payload.receiver[:250], alerts=len(payload.alerts), body=body)
        else:
            delivery = self._write(
                lambda session: store.insert_inbox(
                    session, receiver=payload.receiver[:250], alerts=len(payload.alerts), body=body
                ),
                own_pool=True,
            )
        self.wakeup()
        if stages is not None:
            stages["plan"] = planned - began
            stages["insert"] = time.perf_counter() - planned
        results = []
        for plan in plans:
            result = {"alertname": plan.alert.alertname, "fingerprint": plan.alert.fingerprint, "status": "accepted"}
            if plan.route is not None:
                # The run id is deterministic: the caller can look the run up once the worker has decided.
                result.update(dag_id=plan.dag_id, target=plan.target)
                if plan.alert.status == "firing":
                    result["run_id"] = plan.run_id
            results.append(result)
        return {"status": "accepted", "delivery": delivery, "counts": {"accepted": len(plans)}, "results": results}

    def plan(
        self, payload: WebhookPayload, settings: IntakeSettings, *, strict: bool = True, session: Any = None
    ) -> list[Plan]:
        """Route, build and validate every alert; raise Rejected listing every problem, before anything starts.

        ``strict=False`` is the drain of a delivery accepted earlier (limits and timestamps were checked then): an
        alert whose conf no longer passes (a route or the DAG's Params changed in between) is "rejected" on its
        own, with an ack, instead of refusing a delivery that Alertmanager was already told is accepted.
        """
        from airflow.sdk.exceptions import ParamValidationError
        from airflow.utils.session import create_session

        moment = self.clock()
        if strict:
            limits = validation.Limits.from_settings(settings.intake)
            # Limits and timestamps first: a value over its limit can never succeed (4xx), and must not reach the DB.
            problems = validation.limit_problems(payload, limits)
            # A sender's clock is compared with the real one; self.clock is the policy clock (maintenance window).
            wall = datetime.now(UTC)
            for index, alert in enumerate(payload.alerts[: limits.max_alerts]):
                problems += [f"alerts[{index}]: {line}" for line in validation.timestamp_problems(alert, wall, limits)]
            if problems:
                self.notify_rejected(problems, payload, settings)
                raise Rejected("the payload is over the intake's limits or invalid; nothing was started", problems)
        plans: list[Plan] = []
        errors: list[str] = []
        dag_models: dict[str, Any] = {}
        # The HTTP answer (strict) opens no session: its DAG facts come from a short per-process cache.
        with nullcontext(session) if session is not None or strict else create_session(scoped=False) as session:
            for index, alert in enumerate(payload.alerts):
                where = f"alerts[{index}] ({alert.alertname[:100]}, fingerprint {alert.fingerprint})"
                # Priority, environment, links and channel only matter to the acks, which the drain builds: the
                # HTTP answer (strict) does not spend a storm's CPU on them.
                route = settings.routes.match(alert.labels)
                facts, channel = facts_for(alert, payload.externalURL, settings, route) if not strict else (None, "")
                plan = Plan(alert=alert, external_url=payload.externalURL, facts=facts, channel=channel)
                plan.route = route
                plans.append(plan)
                if plan.route is None:
                    plan.key = routing.alert_key("", "", alert)
                    continue
                try:
                    plan.target = routing.target_of(plan.route, alert)
                    too_long = validation.target_problem(plan.target)
                    if too_long:
                        raise routing.AlertConfError(too_long)
                    plan.key = routing.alert_key(plan.route.dag_id, plan.target, alert)
                    plan.run_id = routing.run_id_for(plan.route.dag_id, plan.target, alert)
                    if alert.status == "resolved":
                        continue
                    plan.mode = decisions.run_mode(plan.route, moment, settings.window)
                    plan.conf = routing.build_conf(plan.route, alert, payload.externalURL, dry_run=plan.mode.dry_run)
                except routing.AlertConfError as err:
                    if alert.status == "resolved":
                        plan.route = None  # a resolved alert we could never have started: nothing to say
                        continue
                    errors.append(f"{where}: route {plan.route.name}: {err}")
                    if not strict and plan.key:
                        plan.blocked, plan.blocked_why = "rejected", f"route {plan.route.name}: {err}"
                    elif not strict:
                        plan.route = None  # no target, no key: no runbook can act on it
                        plan.key = routing.alert_key("", "", alert)
                    continue
                dag_id = plan.route.dag_id
                if dag_id not in dag_models:
                    dag_models[dag_id] = (
                        self._accept_dag(dag_id) if strict else (self._dag_model(dag_id, session), None)
                    )
                model, dag = dag_models[dag_id]
                # A DAG that cannot run this alert answers for this alert alone, never for the payload: a 5xx would
                # have Alertmanager retry the valid alerts with it (forever, for a typo in a route), a 4xx drop them.
                # The ledger row says "missing", which a later firing of the same alert replaces (see _firing):
                # once the DAG is parsed, the next notification (repeat_interval) starts the run, once.
                if model is None:
                    plan.blocked = "missing"
                    plan.blocked_why = f"{dag_id} is not known to Airflow (check the route / the DAG file)"
                    continue
                if model.is_stale or model.has_import_errors:
                    plan.blocked = "missing"
                    plan.blocked_why = "its DAG file was removed (stale)" if model.is_stale else "import errors"
                    continue
                if model.is_paused:
                    # A queued run on a paused DAG would hold the target until someone unpauses: create none.
                    plan.blocked = "paused"
                    continue
                if not strict:
                    dag = self._dag(dag_id, session)
                if dag is None:
                    # Known but not serialized yet (the dag-processor writes both together, so this is brief).
                    plan.blocked = "missing"
                    plan.blocked_why = f"{dag_id} has no serialized version in Airflow yet (the DAG file is not parsed)"
                    continue
                try:
                    validate_conf(dag.params, plan.conf)
                except (ParamValidationError, ValueError, TypeError) as err:
                    errors.append(f"{where}: conf for DAG {plan.route.dag_id} fails its Params: {err}")
                    plan.blocked, plan.blocked_why = "rejected", f"its conf fails the DAG's Params: {err}"
        if errors and not strict:
            log.warning(
                "Accepted delivery from %r: %d alert(s) refused at drain time: %s",
                payload.receiver[:200],
                len(errors),
                "; ".join(errors)[:2000],
            )
            return plans
        if errors:
            self.notify_rejected(errors, payload, settings)
            raise Rejected("the alert(s) cannot start their runbook; nothing was started", errors)
        return plans

    def notify_rejected(
        self,
        errors: list[str],
        payload: WebhookPayload | None,
        settings: IntakeSettings,
        *,
        receiver: str = "",
    ) -> None:
        """Tell a person about an authenticated delivery we refused: Alertmanager drops 4xx notifications.

        At most one message per receiver per ``refusal_notice_interval_seconds`` (default 10 minutes), and a few in
        all whatever the receivers (``toilless.intake.refusals``); the next one says how many were not posted.
        """
        receiver = payload.receiver if payload else receiver
        interval = float(settings.intake.get("refusal_notice_interval_seconds", 600))
        self._refusals.interval = interval
        suppressed = self._refusals.admit(receiver[:200], self.clock().timestamp())
        if suppressed is None:
            log.warning("Alert intake refused a delivery from receiver %r (not posted: rate limit)", receiver[:200])
            return
        alerts = payload.alerts[:100] if payload else []
        prod = any(
            decisions.is_prod(decisions.environment_for(a.labels, settings.intake), settings.intake) for a in alerts
        )
        channels = settings.intake.get("channels", {})
        channel = channels.get("prod", "urgent") if prod else channels.get("non_prod", "non_urgent")
        message = decisions.rejected_notice(
            errors,
            receiver=receiver,
            alertnames=[a.alertname for a in alerts],
            suppressed=suppressed,
            interval_minutes=interval / 60,
        )
        try:
            self._write(lambda session: self._enqueue(session, channel, message))
            self.wakeup()
        except Exception:
            log.exception("Could not queue the rejection notice")
