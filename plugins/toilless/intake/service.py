"""The intake's decisions against Airflow: validate a payload completely, accept it durably, then start runs once.

Two steps, so that the HTTP answer waits for nothing but validation and one insert:

* :meth:`IntakeService.accept` (the HTTP handler): :meth:`IntakeService.plan` routes every alert, builds its conf
  and validates it against the DAG's Params (the same check Airflow's REST API runs); a problem is a 4xx and
  nothing is written; otherwise the delivery goes to the inbox in ONE insert and the answer is 200 "accepted".
* :meth:`IntakeService.drain_inbox` (the worker): decides each accepted delivery in ONE transaction with its
  ledger rows, its runs, its acks (outbox) and its inbox row marked done (see :mod:`toilless.intake.store`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from toilless.intake import decisions, routing, validation
from toilless.intake.auth import Credentials
from toilless.intake.models import Alert, WebhookPayload
from toilless.intake.params import validate_conf
from toilless.intake.refusals import RefusalLimiter
from toilless.intake.store import claim_inbox, inbox, ledger, now, outbox, target_hash, target_lock

log = logging.getLogger(__name__)

ACTIVE_STATES = ("queued", "running")
TRIGGERING_USER = "toilless-alert-intake"
#: Deserialized DAGs kept per process (each version of a routed DAG is one entry; LRU beyond this).
DAG_CACHE_SIZE = 32
DAG_CACHE_TTL_SECONDS = 3600
_WRITE_ATTEMPTS = 8
#: Inbox rows (deliveries) decided in one transaction on PostgreSQL, and at most this many alerts in it.
DRAIN_ROWS_PER_TRANSACTION = 10
DRAIN_ALERTS_PER_TRANSACTION = 500


class IntakeError(Exception):
    """An answer other than 200; ``errors`` say what is wrong, for the caller."""

    status_code = 500

    def __init__(self, detail: str, errors: list[str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class Rejected(IntakeError):
    """The payload or the conf it yields is invalid: Alertmanager must not retry; nothing started."""

    status_code = 422


class Unavailable(IntakeError):
    """The intake cannot decide now (the metadata DB is busy or unreachable): Alertmanager retries."""

    status_code = 503


class _Contended(Exception):
    """Another delivery won the race for this alert or target; re-read and decide again."""


# -- settings ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IntakeSettings:
    intake: dict[str, Any]
    toilless: dict[str, Any]
    routes: routing.RouteTable
    window: Any  # WeeklyWindow | None

    @property
    def max_payload_bytes(self) -> int:
        return int(self.intake.get("max_payload_bytes", 1024 * 1024))


class SettingsProvider:
    """Settings, routes and the caller secret, re-read at most every ``ttl`` seconds (routes also on file change)."""

    def __init__(self, *, ttl: float | None = None, routes_path: Path | None = None) -> None:
        self._ttl = ttl
        self._routes_path = routes_path
        self._lock = threading.Lock()
        self._settings: tuple[float, IntakeSettings] | None = None
        self._routes: tuple[Path, float, routing.RouteTable] | None = None
        self._credentials: tuple[float, Credentials | None] | None = None

    def get(self) -> IntakeSettings:
        with self._lock:
            cached = self._settings
            if cached and time.monotonic() - cached[0] < self._ttl_for(cached[1].intake):
                return cached[1]
        settings = self._load()
        with self._lock:
            self._settings = (time.monotonic(), settings)
        return settings

    def credentials(self) -> Credentials | None:
        """The secret callers must present; None when the Connection is missing (the intake then answers 503)."""
        with self._lock:
            cached = self._credentials
        settings = self.get()
        if cached and time.monotonic() - cached[0] < self._ttl_for(settings.intake):
            return cached[1]
        from airflow.exceptions import AirflowNotFoundException
        from airflow.sdk import BaseHook

        conn_id = settings.intake.get("auth_conn_id", "toilless_alert_intake")
        try:
            connection = BaseHook.get_connection(conn_id)
            credentials: Credentials | None = Credentials(connection.password or "", connection.login or "")
            if not credentials.password:
                log.error("Connection %s has no password: the alert intake refuses every call", conn_id)
                credentials = None
        except AirflowNotFoundException:
            log.error("No Connection %s: the alert intake refuses every call until it exists", conn_id)
            credentials = None
        with self._lock:
            self._credentials = (time.monotonic(), credentials)
        return credentials

    def _ttl_for(self, intake: dict[str, Any]) -> float:
        return self._ttl if self._ttl is not None else float(intake.get("settings_ttl_seconds", 30))

    def _load(self) -> IntakeSettings:
        from toilless.common.config import include_path, load_config
        from toilless.common.gate import maintenance_window

        intake = load_config("alert_intake")
        toilless = load_config("toilless")
        path = self._routes_path or include_path(intake.get("routes_file", "alert_routes.yaml"))
        mtime = path.stat().st_mtime if path.exists() else -1.0
        cached = self._routes
        if cached and cached[0] == path and cached[1] == mtime:
            routes = cached[2]
        else:
            routes = routing.RouteTable.from_file(path)
            self._routes = (path, mtime, routes)
            log.info("Loaded %d alert routes from %s", len(routes.routes), path)
        window = maintenance_window(toilless)
        return IntakeSettings(intake=intake, toilless=toilless, routes=routes, window=window)


# -- plans and outcomes -----------------------------------------------------------------------------------------
@dataclass
class Plan:
    """One alert, routed and validated, ready to act on."""

    alert: Alert
    external_url: str
    facts: decisions.AlertFacts | None  # None in the HTTP answer's plan (see IntakeService.plan)
    channel: str
    route: routing.Route | None = None
    target: str = ""
    key: str = ""
    run_id: str = ""
    conf: dict[str, Any] = field(default_factory=dict)
    mode: decisions.RunMode | None = None
    #: "paused" or "missing" (stale, import errors, or never known to Airflow): the routed DAG cannot run this
    #: alert; it gets its own ack, the others proceed.
    blocked: str = ""
    blocked_why: str = ""

    @property
    def dag_id(self) -> str:
        return self.route.dag_id if self.route else ""


@dataclass
class Outcome:
    alertname: str
    fingerprint: str
    # started | duplicate | skipped | queued | notify_only | no_runbook | resolved | ignored | paused | missing
    status: str
    dag_id: str = ""
    run_id: str = ""
    target: str = ""
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if value != "" or key == "status"}


def facts_for(alert: Alert, external_url: str, settings: IntakeSettings) -> tuple[decisions.AlertFacts, str]:
    environment = decisions.environment_for(alert.labels, settings.intake)
    facts = decisions.AlertFacts(
        alert=alert,
        priority=decisions.priority_for(alert.labels, settings.intake),
        environment=environment,
        links=decisions.links_for(alert, environment, external_url, settings.intake),
        link_hosts=decisions.link_hosts_for(settings.toilless, settings.intake) | _airflow_ui_host(settings),
    )
    return facts, decisions.channel_for(environment, settings.intake)


def _airflow_ui_host(settings: IntakeSettings) -> frozenset[str]:
    """The Airflow UI's host (``airflow_base_url`` or Airflow's ``[api] base_url``): run links point there."""
    from urllib.parse import urlsplit

    from toilless.common.reporting import airflow_base_url

    host = urlsplit(airflow_base_url(settings.toilless)).hostname
    return frozenset({host.lower()}) if host else frozenset()


# -- the service ------------------------------------------------------------------------------------------------
class IntakeService:
    def __init__(
        self,
        provider: SettingsProvider | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.provider = provider or SettingsProvider()
        self.clock = clock
        self._dagbag: Any = None
        self._dagbag_lock = threading.Lock()
        self._refusals = RefusalLimiter()
        # SQLite allows one writer: serialise this process's intake writes instead of failing on "database is
        # locked". Correctness across processes still comes from the primary keys.
        self._sqlite_write_lock = threading.Lock()
        # The DAGs one delivery needs, looked up once per delivery (plan and trigger both need them).
        self._delivery = threading.local()
        self.wakeup: Callable[[], None] = lambda: None

    # -- entry point: the durable inbox ---------------------------------------------------------------------------
    def accept(self, payload: WebhookPayload, raw: Any = None) -> dict[str, Any]:
        """Validate everything that decides a 4xx, then write the delivery to the inbox in ONE insert and answer.

        The alerts are decided by the worker (:meth:`drain_inbox`), not here: the HTTP answer waits for no
        ``create_dagrun``, no ledger lock and no Slack. Raises Rejected (4xx, nothing written) or Unavailable (the
        insert failed: 5xx, Alertmanager retries, and the ledger makes a second copy of the delivery harmless).
        """
        settings = self.provider.get()
        self._delivery.dags = {}
        try:
            plans = self.plan(payload, settings)
        finally:
            self._delivery.dags = None
        body = json.dumps(raw) if raw is not None else payload.model_dump_json()
        delivery = self._write(lambda session: self._insert_inbox(session, payload, body))
        self.wakeup()
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

    @staticmethod
    def _insert_inbox(session: Any, payload: WebhookPayload, body: str) -> int:
        from sqlalchemy import insert

        result = session.execute(
            insert(inbox).values(
                receiver=payload.receiver[:250],
                alerts=len(payload.alerts),
                payload_json=body,
                received_at=now(),
                attempts=0,
            )
        )
        return int(result.inserted_primary_key[0])

    def drain_inbox(self, *, limit: int = 1000, budget_seconds: float = 5.0) -> int:
        """Decide accepted deliveries, oldest first, in transactions that also mark their inbox rows done.

        Returns how many deliveries were decided in this pass (at most about ``limit``, for at most about
        ``budget_seconds``, so the worker also gets to the outbox and the queue during a storm). A delivery whose
        decision fails is kept and retried later with backoff (never dropped); the others go on.
        """
        settings = self.provider.get()
        batch = self._rows_per_transaction()
        drained = 0
        deadline = time.monotonic() + budget_seconds
        while drained < limit and time.monotonic() < deadline:
            decided, attempted = self._drain_batch(settings, batch)
            if not attempted:
                break
            drained += decided
        return drained

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
        found = session.execute(claim_inbox(session.get_bind().dialect.name, rows, now(), only)).all()
        total = 0
        for row in found:
            if claimed and total + row.alerts > DRAIN_ALERTS_PER_TRANSACTION:
                break
            total += row.alerts
            claimed.append(row.id)
            payload = WebhookPayload.model_validate_json(row.payload_json)
            self._delivery.dags = {}
            try:
                plans = self.plan(payload, settings, strict=False, session=session)
                outcomes = [self._decide(session, plan, settings) for plan in plans]
            finally:
                self._delivery.dags = None
            self._mark_done(session, row.id, outcomes)
        return len(claimed)

    def _drain_alone(self, delivery: int, settings: IntakeSettings) -> int:
        """Decide one delivery alert by alert (each its own transaction, with every race handled), then mark it."""
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session(scoped=False) as session:
            body = session.execute(select(inbox.c.payload_json).where(inbox.c.id == delivery)).scalar_one()
        payload = WebhookPayload.model_validate_json(body)
        self._delivery.dags = {}
        try:
            plans = self.plan(payload, settings, strict=False)
            outcomes = [self._act(plan, settings) for plan in plans]
        finally:
            self._delivery.dags = None
        # A crash before this mark redoes the delivery: every decision above is in the ledger, so it redoes nothing.
        self._write(lambda session: self._mark_done(session, delivery, outcomes, strict=False))
        return delivery

    @staticmethod
    def _mark_done(session: Any, delivery: int, outcomes: list[Outcome], *, strict: bool = True) -> None:
        from sqlalchemy import update

        changed = session.execute(
            update(inbox)
            .where(inbox.c.id == delivery, inbox.c.done_at.is_(None))
            .values(done_at=now(), outcome_json=json.dumps([outcome.as_dict() for outcome in outcomes]))
        ).rowcount
        if strict and changed != 1:
            raise _Contended  # another worker decided it meanwhile: roll back, decide alert by alert

    def _postpone(self, delivery: int, err: Exception) -> None:
        """A delivery whose drain failed: kept (never dropped), retried with backoff, logged."""
        from sqlalchemy import select, update

        log.error(
            "Alert intake could not decide accepted delivery %s; retrying it later: %s", delivery, err, exc_info=err
        )

        def note(session: Any) -> None:
            attempts = session.execute(select(inbox.c.attempts).where(inbox.c.id == delivery)).scalar_one() + 1
            backoff = min(300.0, 2.0 ** min(attempts, 9))
            session.execute(
                update(inbox)
                .where(inbox.c.id == delivery)
                .values(attempts=attempts, not_before=now() + backoff, last_error=str(err)[:1000])
            )

        try:
            self._write(note)
        except Exception:
            log.exception("Could not postpone delivery %s", delivery)

    def delivery(self, delivery: int) -> dict[str, Any] | None:
        """What became of an accepted delivery: pending, or done with each alert's decision."""
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session(scoped=False) as session:
            row = session.execute(select(inbox).where(inbox.c.id == delivery)).first()
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
        with nullcontext(session) if session is not None else create_session(scoped=False) as session:
            for index, alert in enumerate(payload.alerts):
                where = f"alerts[{index}] ({alert.alertname[:100]}, fingerprint {alert.fingerprint})"
                # Priority, environment, links and channel only matter to the acks, which the drain builds: the
                # HTTP answer (strict) does not spend a storm's CPU on them.
                facts, channel = facts_for(alert, payload.externalURL, settings) if not strict else (None, "")
                plan = Plan(alert=alert, external_url=payload.externalURL, facts=facts, channel=channel)
                plan.route = settings.routes.match(alert.labels)
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
                    dag_models[dag_id] = self._dag_model(dag_id, session)
                model = dag_models[dag_id]
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

    # -- acting --------------------------------------------------------------------------------------------------
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
        from sqlalchemy import delete

        assert plan.route is not None
        assert plan.mode is not None
        alert = plan.alert
        outcome = Outcome(alert.alertname, alert.fingerprint, "", plan.dag_id, plan.run_id, plan.target)
        row = self._ledger_row(session, plan.key)
        if row is not None and row.decision in ("paused", "missing", "rejected"):
            # Told before that the DAG could not run it; it can now (unpaused, restored): decide afresh, once.
            changed = session.execute(
                delete(ledger).where(ledger.c.alert_key == plan.key, ledger.c.decision == row.decision)
            ).rowcount
            if changed != 1:
                raise _Contended
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
        from sqlalchemy import update

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
        values: dict[str, Any] = {"resolved_at": now(), "updated_at": now()}
        notice_state = ""
        if row.decision == "queued":
            values["decision"] = "cancelled"
            notice_state = "queued (now cancelled: it will not start)"
        elif row.decision == "started" and state in ACTIVE_STATES:
            notice_state = f"still {state}"
        changed = session.execute(
            update(ledger).where(ledger.c.alert_key == plan.key, ledger.c.resolved_at.is_(None)).values(**values)
        ).rowcount
        if changed != 1:
            raise _Contended
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

    # -- queued alerts (called by the worker) -------------------------------------------------------------------
    def start_queued(self) -> int:
        """Start queued alerts whose target is free now. Returns how many started."""
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session(scoped=False) as session:
            keys = (
                session.execute(
                    select(ledger.c.alert_key).where(ledger.c.decision == "queued").order_by(ledger.c.created_at)
                )
                .scalars()
                .all()
            )
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
        from sqlalchemy import update

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
            session.execute(update(ledger).where(ledger.c.alert_key == key).values(decision="cancelled"))
            return False
        mode = decisions.run_mode(route, self.clock(), settings.window)
        facts, channel = facts_for(alert, stored.get("external_url", ""), settings)
        if not mode.start:
            return False  # notify-only maintenance: stays queued until the window closes
        conf = routing.build_conf(route, alert, stored.get("external_url", ""), dry_run=mode.dry_run)
        self._claim(session, row.dag_id, row.target, holder, row.run_id, key)
        changed = session.execute(
            update(ledger)
            .where(ledger.c.alert_key == key, ledger.c.decision == "queued")
            .values(decision="started", updated_at=now())
        ).rowcount
        if changed != 1:
            raise _Contended
        try:
            paused = self._trigger(session, row.dag_id, row.run_id, conf)
        except _RunExists:
            return False  # started already (another process won); the lock and ledger now say so
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

    # -- DB helpers ----------------------------------------------------------------------------------------------
    def _write(self, action: Callable[[Any], Any], *, batch: bool = False) -> Any:
        """Run ``action`` in its own transaction; on a lost race (unique key, CAS), re-read and decide again.

        ``batch``: the action decides several alerts; a lost race raises _BatchConflict (the caller then decides
        each alert alone) instead of answering for one alert.
        """
        from airflow import settings as airflow_settings
        from airflow.utils.session import create_session
        from sqlalchemy.exc import IntegrityError, OperationalError

        from toilless.intake.store import ensure_tables

        ensure_tables(airflow_settings.engine)
        sqlite = airflow_settings.engine.dialect.name == "sqlite"
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                with (
                    self._sqlite_write_lock if sqlite else nullcontext(),
                    create_session(scoped=False) as session,
                ):
                    return action(session)
            except (_AlreadyStarted, IntegrityError, _Contended) as err:
                if batch:
                    raise _BatchConflict from err
                if isinstance(err, _AlreadyStarted):
                    return err.outcome
                log.info("Intake write lost a race (attempt %d); deciding again", attempt + 1)
            except OperationalError as err:
                if "locked" not in str(err).lower() and "deadlock" not in str(err).lower():
                    raise
                log.warning("Metadata DB busy (attempt %d): %s", attempt + 1, str(err).splitlines()[0])
                time.sleep(0.05 * (attempt + 1))
        raise Unavailable("the metadata DB stayed contended; retry")

    @staticmethod
    def _ledger_row(session: Any, key: str) -> Any:
        from sqlalchemy import select

        return session.execute(select(ledger).where(ledger.c.alert_key == key)).first()

    @staticmethod
    def _insert_ledger(
        session: Any,
        plan: Plan,
        *,
        decision: str,
        run_id: str | None,
        payload_json: str | None = None,
        resolved: bool = False,
    ) -> None:
        from sqlalchemy import insert

        stamp = now()
        session.execute(
            insert(ledger).values(
                alert_key=plan.key,
                dag_id=plan.dag_id,
                target=plan.target,
                route=plan.route.name if plan.route else "",
                run_id=run_id,
                decision=decision,
                alertname=plan.alert.alertname[:250],
                fingerprint=plan.alert.fingerprint,
                starts_at=plan.alert.starts_at_utc,
                payload_json=payload_json,
                created_at=stamp,
                updated_at=stamp,
                resolved_at=stamp if resolved else None,
            )
        )

    def _holder(self, session: Any, dag_id: str, target: str) -> tuple[Any, str | None]:
        """The lock row for a target and the state of the run holding it (None if that run is gone)."""
        from sqlalchemy import select

        row = session.execute(
            select(target_lock).where(target_lock.c.dag_id == dag_id, target_lock.c.target_hash == target_hash(target))
        ).first()
        if row is None:
            return None, None
        return row, self._run_state(session, dag_id, row.run_id)

    @staticmethod
    def _run_state(session: Any, dag_id: str, run_id: str) -> str | None:
        from airflow.models.dagrun import DagRun
        from sqlalchemy import select

        state = session.scalar(select(DagRun.state).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        return str(state.value if hasattr(state, "value") else state) if state is not None else None

    @staticmethod
    def _claim(session: Any, dag_id: str, target: str, holder: Any, run_id: str, key: str) -> None:
        """Take the target: insert its lock row, or swap it from the finished run that held it (compare-and-swap)."""
        from sqlalchemy import insert, update

        digest = target_hash(target)
        if holder is None:
            # A concurrent insert for the same target raises IntegrityError: the loser decides again.
            session.execute(
                insert(target_lock).values(
                    dag_id=dag_id,
                    target_hash=digest,
                    target=target,
                    run_id=run_id,
                    alert_key=key,
                    updated_at=now(),
                )
            )
            return
        changed = session.execute(
            update(target_lock)
            .where(
                target_lock.c.dag_id == dag_id,
                target_lock.c.target_hash == digest,
                target_lock.c.run_id == holder.run_id,
            )
            .values(run_id=run_id, alert_key=key, updated_at=now())
        ).rowcount
        if changed != 1:
            raise _Contended

    def _trigger(self, session: Any, dag_id: str, run_id: str, conf: dict[str, Any]) -> bool:
        """Create the queued run in this transaction, as Airflow's REST API trigger does. Returns is_paused.

        Same steps as ``POST /api/v2/dags/{dag_id}/dagRuns`` (import errors and allowed run types checked, Params
        validated by ``create_dagrun``), but with this process's cached DAG bag: ``trigger_dag`` would deserialize
        the DAG again on every call, which is most of an alert's latency.
        """
        from airflow._shared.timezones import timezone
        from airflow.models.dag import DagModel
        from airflow.models.dagrun import DagRun
        from airflow.utils.state import DagRunState
        from airflow.utils.types import DagRunTriggeredByType, DagRunType
        from sqlalchemy import select

        model = session.scalar(select(DagModel).where(DagModel.dag_id == dag_id, ~DagModel.is_stale))
        if model is None:
            raise Unavailable(f"DAG {dag_id} is not in Airflow (not parsed yet, or removed)")
        if model.has_import_errors:
            raise Unavailable(f"DAG {dag_id} has import errors and cannot be triggered")
        if model.allowed_run_types is not None and DagRunType.MANUAL not in model.allowed_run_types:
            raise Unavailable(f"DAG {dag_id} does not allow manual runs")
        if session.scalar(select(DagRun.id).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)) is not None:
            raise _RunExists
        dag = self._dag(dag_id, session)
        if dag is None:
            raise Unavailable(f"DAG {dag_id} has no serialized version yet")
        dag.create_dagrun(
            run_id=run_id,
            logical_date=None,
            data_interval=None,
            run_after=timezone.utcnow(),
            conf=conf,
            run_type=DagRunType.MANUAL,
            triggered_by=DagRunTriggeredByType.REST_API,
            triggering_user_name=TRIGGERING_USER,
            state=DagRunState.QUEUED,
            session=session,
        )
        session.flush()
        log.info("Alert intake started %s run %s", dag_id, run_id)
        return bool(model.is_paused)

    @staticmethod
    def _enqueue(session: Any, channel: str, message: dict[str, Any]) -> None:
        from sqlalchemy import insert

        session.execute(
            insert(outbox).values(channel=channel, message_json=json.dumps(message), created_at=now(), attempts=0)
        )

    def _dag(self, dag_id: str, session: Any) -> Any:
        """The latest serialized version of ``dag_id``, from a bounded, thread-safe cache.

        Deliveries run on the API server's thread pool, so the cache is Airflow's CachedDBDagBag (LRU with a TTL and
        its own RLock around every cache access) rather than DBDagBag (an unbounded dict without a lock), and the
        bag itself is created once under a lock.
        """
        delivery: dict[str, Any] | None = getattr(self._delivery, "dags", None)
        if delivery is not None and dag_id in delivery:
            return delivery[dag_id]
        from airflow.models.dag_version import DagVersion
        from airflow.models.serialized_dag import SerializedDagModel
        from sqlalchemy import select

        bag = self.dagbag()
        version_id = session.scalar(
            select(SerializedDagModel.dag_version_id)
            .join(DagVersion, SerializedDagModel.dag_version_id == DagVersion.id)
            .where(SerializedDagModel.dag_id == dag_id)
            .order_by(DagVersion.version_number.desc())
            .limit(1)
        )
        if version_id is None:
            return None
        dag = bag.get_dag(version_id, session=session)
        if delivery is not None and dag is not None:
            delivery[dag_id] = dag  # the same version for every alert of this delivery
        return dag

    def dagbag(self) -> Any:
        """This service's DAG cache, created on first use (once, even when threads race for it)."""
        if self._dagbag is None:
            from airflow.models.dagbag import CachedDBDagBag

            with self._dagbag_lock:
                if self._dagbag is None:
                    self._dagbag = CachedDBDagBag(
                        load_op_links=False,
                        cache_size=DAG_CACHE_SIZE,
                        cache_ttl=DAG_CACHE_TTL_SECONDS,
                        stats_prefix="toilless.intake.dag_bag",
                    )
        return self._dagbag

    @staticmethod
    def _dag_model(dag_id: str, session: Any) -> Any:
        from airflow.models.dag import DagModel
        from sqlalchemy import select

        return session.scalar(select(DagModel).where(DagModel.dag_id == dag_id))

    @staticmethod
    def _run_link(dag_id: str, run_id: str, settings: IntakeSettings) -> str:
        from toilless.common.reporting import run_url

        return run_url(dag_id, run_id, settings.toilless)


class _BatchConflict(Exception):
    """A race inside a batched delivery: roll it back and decide each alert in its own transaction."""


class _RunExists(Exception):
    """A run with this id exists already."""


class _AlreadyStarted(Exception):
    """The alert's run exists already: roll back this transaction and answer "duplicate"."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.run_id)
        self.outcome = outcome
