"""The intake service's state and the primitives every step shares: one transaction with retries on a lost race,
the ledger and target-lock helpers, triggering a run as Airflow's REST API does, and the per-process DAG cache.

The steps are mixins over :class:`ServiceCore`: :mod:`~toilless.intake.accept` (the webhook),
:mod:`~toilless.intake.decide` (one alert's decision) and :mod:`~toilless.intake.drain` (the worker);
:class:`toilless.intake.service.IntakeService` puts them together. The SQL itself is in :mod:`toilless.intake.store`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from toilless.intake import store
from toilless.intake.batch import BatchView, state_name
from toilless.intake.errors import Unavailable, _AlreadyStarted, _BatchConflict, _Contended, _RunExists
from toilless.intake.plans import Plan
from toilless.intake.refusals import RefusalLimiter
from toilless.intake.settings import IntakeSettings, SettingsProvider
from toilless.intake.spool import Spool, spool_path

log = logging.getLogger(__name__)

ACTIVE_STATES = ("queued", "running")
TRIGGERING_USER = "toilless-alert-intake"
#: Deserialized DAGs kept per process (each version of a routed DAG is one entry; LRU beyond this).
DAG_CACHE_SIZE = 32
DAG_CACHE_TTL_SECONDS = 3600
#: How long the webhook re-uses a DAG's paused / stale state and latest version (see ServiceCore._accept_dag).
ACCEPT_DAG_TTL_SECONDS = 5.0
_WRITE_ATTEMPTS = 8
#: Connections of the intake's own pool per process (and as many more under load): the webhook's inserts only.
OWN_POOL_SIZE = 2


class ServiceCore:
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
        self._accept_dags: dict[str, tuple[float, Any, Any]] = {}
        self._accept_lock = threading.Lock()
        self._own_engine: Any = None
        self._own_engine_lock = threading.Lock()
        self._refusals = RefusalLimiter()
        # SQLite allows one writer: serialise this process's intake writes instead of failing on "database is
        # locked". Correctness across processes still comes from the primary keys. The webhook writes to the spool.
        self._sqlite_write_lock = threading.Lock()
        self._spool_instance: Spool | None = None
        self._spool_checked = False
        self._spool_lock = threading.Lock()
        # The DAGs one delivery needs, looked up once per delivery (plan and trigger both need them).
        self._delivery = threading.local()
        self.wakeup: Callable[[], None] = lambda: None

    # -- DB helpers ----------------------------------------------------------------------------------------------
    def _write(self, action: Callable[[Any], Any], *, batch: bool = False, own_pool: bool = False) -> Any:
        """Run ``action`` in its own transaction; on a lost race (unique key, CAS), re-read and decide again.

        ``batch``: the action decides several alerts; a lost race raises _BatchConflict (the caller then decides
        each alert alone) instead of answering for one alert. ``own_pool``: on the intake's own connections
        (:meth:`_own_session`), for the webhook's insert.
        """
        from airflow import settings as airflow_settings
        from airflow.utils.session import create_session
        from sqlalchemy.exc import IntegrityError, OperationalError

        store.ensure_tables(airflow_settings.engine)
        sqlite = airflow_settings.engine.dialect.name == "sqlite"
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                with (
                    self._sqlite_write_lock if sqlite else nullcontext(),
                    self._own_session() if own_pool and not sqlite else create_session(scoped=False) as session,
                ):
                    return action(session)
            except (_AlreadyStarted, IntegrityError, _Contended) as err:
                if batch:
                    raise _BatchConflict from err
                if isinstance(err, _AlreadyStarted):
                    return err.outcome
                log.info("Intake write lost a race (attempt %d); deciding again", attempt + 1)
            except OperationalError as err:
                if own_pool and err.connection_invalidated and attempt == 0:
                    # The own pool does not ping on checkout (one round trip fewer per delivery): a connection the
                    # server closed (a restart) fails here once, and SQLAlchemy has then dropped the pool's others.
                    log.info("Intake connection was closed by the metadata DB; retrying on a new one")
                    continue
                if "locked" not in str(err).lower() and "deadlock" not in str(err).lower():
                    raise
                log.warning("Metadata DB busy (attempt %d): %s", attempt + 1, str(err).splitlines()[0])
                time.sleep(0.05 * (attempt + 1))
        raise Unavailable("the metadata DB stayed contended; retry")

    def _spool(self) -> Spool | None:
        """The webhook's spool when the metadata DB is a SQLite file (see :mod:`toilless.intake.spool`), else None."""
        with self._spool_lock:
            if not self._spool_checked:
                from airflow import settings as airflow_settings

                path = spool_path(airflow_settings.engine.url)
                if path is not None:

                    def floor() -> int:
                        from airflow.utils.session import create_session

                        store.ensure_tables(airflow_settings.engine)
                        with create_session(scoped=False) as session:
                            return store.max_inbox_id(session)

                    self._spool_instance = Spool(path, floor=floor)
                self._spool_checked = True
            return self._spool_instance

    @contextmanager
    def _own_session(self) -> Iterator[Any]:
        """A session on the intake's own small connection pool (not SQLite: one writer there anyway).

        In the API server, Airflow's pool (5 + 10 overflow connections) also serves every Execution API call of
        the running tasks; during a storm of runs a delivery's one insert waited for a connection behind them.

        Its connections are in autocommit and not pinged on checkout: the webhook's one INSERT ... RETURNING is
        then one round trip to the server, committed when it returns, instead of four (BEGIN and SELECT 1 of the
        ping, the INSERT, COMMIT), each of which also waited for the API server's GIL to come back. Measured on
        PostgreSQL, 300 inserts each, interleaved, load average 21 on 2 cores: p50 14.3 -> 8.0 ms, p99 86 -> 43 ms.
        Only single-statement writes may use it (nothing here could roll back a second statement).
        """
        from sqlalchemy.orm import Session

        with self._own_engine_lock:
            if self._own_engine is None:
                from airflow import settings as airflow_settings
                from sqlalchemy import create_engine

                self._own_engine = create_engine(
                    airflow_settings.engine.url,
                    pool_size=OWN_POOL_SIZE,
                    max_overflow=OWN_POOL_SIZE,
                    pool_recycle=1800,
                    isolation_level="AUTOCOMMIT",
                )
        session = Session(bind=self._own_engine, expire_on_commit=False)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def _view(self) -> BatchView | None:
        """The current drain batch's reads (:mod:`toilless.intake.batch`); None outside a batch."""
        return getattr(self._delivery, "view", None)

    def _ledger_row(self, session: Any, key: str) -> Any:
        view = self._view()
        row = view.ledger_row(key) if view is not None else ...
        return store.ledger_row(session, key) if row is ... else row

    def _insert_ledger(
        self,
        session: Any,
        plan: Plan,
        *,
        decision: str,
        run_id: str | None,
        payload_json: str | None = None,
        resolved: bool = False,
    ) -> None:
        store.insert_ledger(
            session,
            resolved=resolved,
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
        )
        view = self._view()
        if view is not None:
            view.decided(
                plan.key,
                decision=decision,
                run_id=run_id,
                dag_id=plan.dag_id,
                resolved_at=store.now() if resolved else None,
            )

    def _holder(self, session: Any, dag_id: str, target: str) -> tuple[Any, str | None]:
        """The lock row for a target and the state of the run holding it (None if that run is gone)."""
        view = self._view()
        row = view.lock_row(dag_id, target) if view is not None else ...
        if row is ...:
            row = store.lock_row(session, dag_id, target)
        if row is None:
            return None, None
        return row, self._run_state(session, dag_id, row.run_id)

    def _run_state(self, session: Any, dag_id: str, run_id: str) -> str | None:
        view = self._view()
        state = view.run_state(dag_id, run_id) if view is not None else ...
        return state_name(store.run_state(session, dag_id, run_id)) if state is ... else state

    def _claim(self, session: Any, dag_id: str, target: str, holder: Any, run_id: str, key: str) -> None:
        """Take the target: insert its lock row, or swap it from the finished run that held it (compare-and-swap)."""
        if holder is None:
            store.insert_lock(session, dag_id=dag_id, target=target, run_id=run_id, key=key)
        else:
            changed = store.swap_lock(
                session, dag_id=dag_id, target=target, held_by=holder.run_id, run_id=run_id, key=key
            )
            if changed != 1:
                raise _Contended
        view = self._view()
        if view is not None:
            view.locked(dag_id, target, run_id)

    def _trigger(self, session: Any, dag_id: str, run_id: str, conf: dict[str, Any]) -> bool:
        """Create the queued run in this transaction, as Airflow's REST API trigger does. Returns is_paused.

        Same steps as ``POST /api/v2/dags/{dag_id}/dagRuns`` (import errors and allowed run types checked, Params
        validated by ``create_dagrun``), but with this process's cached DAG bag: ``trigger_dag`` would deserialize
        the DAG again on every call, which is most of an alert's latency.
        """
        from airflow._shared.timezones import timezone
        from airflow.utils.state import DagRunState
        from airflow.utils.types import DagRunTriggeredByType, DagRunType

        view = self._view()
        if view is not None and dag_id in view.live_models:
            model = view.live_models[dag_id]
        else:
            model = store.dag_model(session, dag_id, live=True)
            if view is not None:
                view.live_models[dag_id] = model
        if model is None:
            raise Unavailable(f"DAG {dag_id} is not in Airflow (not parsed yet, or removed)")
        if model.has_import_errors:
            raise Unavailable(f"DAG {dag_id} has import errors and cannot be triggered")
        if model.allowed_run_types is not None and DagRunType.MANUAL not in model.allowed_run_types:
            raise Unavailable(f"DAG {dag_id} does not allow manual runs")
        known = view.run_state(dag_id, run_id) if view is not None else ...
        if store.run_exists(session, dag_id, run_id) if known is ... else known is not None:
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
        if view is not None:
            view.created(dag_id, run_id)
        log.info("Alert intake started %s run %s", dag_id, run_id)
        return bool(model.is_paused)

    @staticmethod
    def _enqueue(session: Any, channel: str, message: dict[str, Any]) -> None:
        store.enqueue(session, channel, json.dumps(message))

    def _dag(self, dag_id: str, session: Any) -> Any:
        """The latest serialized version of ``dag_id``, from a bounded, thread-safe cache.

        Deliveries run on the API server's thread pool, so the cache is Airflow's CachedDBDagBag (LRU with a TTL and
        its own RLock around every cache access) rather than DBDagBag (an unbounded dict without a lock), and the
        bag itself is created once under a lock.
        """
        delivery: dict[str, Any] | None = getattr(self._delivery, "dags", None)
        if delivery is not None and dag_id in delivery:
            return delivery[dag_id]
        bag = self.dagbag()
        version_id = store.latest_dag_version_id(session, dag_id)
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
        return store.dag_model(session, dag_id)

    def _accept_dag(self, dag_id: str) -> tuple[Any, Any]:
        """(DagModel facts, latest DAG) for the webhook's Params check, cached ``ACCEPT_DAG_TTL_SECONDS`` per process.

        The HTTP answer then reads nothing but this cache: during a storm every delivery names the same few DAGs.
        A state up to a few seconds old is safe here: the worker decides with fresh reads in its transaction (a DAG
        paused meanwhile is "paused", a conf that no longer passes new Params is "rejected", both acknowledged).
        """
        from airflow.utils.session import create_session

        moment = time.monotonic()
        with self._accept_lock:
            cached = self._accept_dags.get(dag_id)
            if cached is not None and moment - cached[0] < ACCEPT_DAG_TTL_SECONDS:
                return cached[1], cached[2]
        with create_session(scoped=False) as session:
            row = store.dag_model(session, dag_id)
            model = (
                None
                if row is None
                else SimpleNamespace(
                    is_stale=row.is_stale, has_import_errors=row.has_import_errors, is_paused=row.is_paused
                )
            )
            runnable = model is not None and not (model.is_stale or model.has_import_errors or model.is_paused)
            dag = self._dag(dag_id, session) if runnable else None
        with self._accept_lock:
            if len(self._accept_dags) >= DAG_CACHE_SIZE:
                self._accept_dags.clear()  # routes name a few DAGs; this only bounds a pathological routes file
            self._accept_dags[dag_id] = (moment, model, dag)
        return model, dag

    @staticmethod
    def _run_link(dag_id: str, run_id: str, settings: IntakeSettings) -> str:
        from toilless.common.reporting import run_url

        return run_url(dag_id, run_id, {"airflow_base_url": settings.airflow_base_url})  # read once per settings load
