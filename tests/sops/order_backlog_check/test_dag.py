"""order_backlog_check end to end (dag.test) against a real PostgreSQL, a Kubernetes API emulator and the Slack sink.

Time is travelled (time-machine) so business hours are deterministic: Monday 2026-11-23 10:30 Europe/Berlin is
inside them, 20:00 is outside. A small "processor" thread plays the order processor: when the Deployment is
restarted it writes a new run to the pod's log and processes orders in the database, as the real one would.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
import zstandard

from sandbox.kubernetes import KubernetesEmulatorServer
from sandbox.order_backlog_check_data import (
    ProcessorStandIn,
    process_postgres_orders,
    processor_log,
    seed_postgres,
    write_log,
)
from sandbox.postgres import PostgresServer
from sandbox.slack_sink import SlackSink
from tests.sops.order_backlog_check.scenarios import STUCK_DIAGNOSIS

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
DAG_ID = "order_backlog_check"
INSIDE_HOURS = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)  # Monday 10:30 in Berlin
OUTSIDE_HOURS = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)  # Monday 20:00 in Berlin
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


@dataclass
class OrdersEnv:
    pg: PostgresServer
    k8s: KubernetesEmulatorServer
    sink: SlackSink
    log_dir: Path
    namespace: str
    configure: Callable[..., None]

    @property
    def log_path(self) -> Path:
        return self.log_dir / "order_processing.log"

    def outstanding(self) -> int:
        with self.pg.connect("orders") as connection, connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM orders WHERE status IN ('new', 'processing')")
            return int(cursor.fetchone()[0])

    def orders_table_exists(self) -> bool:
        with self.pg.connect("orders") as connection, connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass('public.orders') IS NOT NULL")
            return bool(cursor.fetchone()[0])

    def restarts(self) -> list[Any]:
        return [
            patch
            for patch in self.k8s.deployment_patches(self.namespace, "order-processor")
            if RESTARTED_AT in str(patch)
        ]


@pytest.fixture(scope="module")
def orders_database(postgres_server: PostgresServer) -> PostgresServer:
    postgres_server.create_database("orders")
    return postgres_server


@pytest.fixture
def orders_env(
    orders_database: PostgresServer,
    kubernetes_emulator: KubernetesEmulatorServer,
    slack_sink: SlackSink,
    set_connection: Callable[[str, dict[str, Any]], None],
    set_variable: Callable[[str, Any], None],
    tmp_path: Path,
) -> OrdersEnv:
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    namespace = f"orders-{uuid.uuid4().hex[:8]}"
    set_connection("orders_db", orders_database.airflow_connection("orders"))

    def configure(*, log_source: str = "file", **overrides: Any) -> None:
        config: dict[str, Any] = {
            "log": {
                "source": log_source,
                "path": str(log_dir / "order_processing.log"),
                "allowed_roots": [str(log_dir)],
            },
            "kubernetes": {"namespace": namespace, "deployment": "order-processor"},
            "verify": {"timeout_minutes": 0.5, "poll_seconds": 1},
        }
        config.update(overrides)
        set_variable("toilless_order_backlog_check", config)

    configure()
    return OrdersEnv(orders_database, kubernetes_emulator, slack_sink, log_dir, namespace, configure)


@pytest.fixture
def run_order_dag(airflow_db: Path) -> Callable[..., Any]:
    """dag.test() of this DAG, parsed from its own file so another DAG's import error cannot fail these tests."""

    def _run(dag_id: str, run_conf: dict[str, Any] | None = None) -> Any:
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(REPO / "dags" / f"{dag_id}.py"))
        assert not bag.import_errors, bag.import_errors
        return bag.get_dag(dag_id).test(run_conf=run_conf or {})

    return _run


def _deploy_processor(env: OrdersEnv) -> None:
    labels = {"app": "order-processor"}
    env.k8s.add_deployment(env.namespace, "order-processor", labels)
    env.k8s.add_pod(env.namespace, "order-processor-7d9f", labels, lambda: env.log_path.read_text(encoding="utf-8"))


def _seed_processor(
    env: OrdersEnv, scenario: str, *, total: int, outstanding: int, log_source: str | None = None, **seed: Any
) -> None:
    """Orders in Postgres, the processor's log in ``scenario`` and the processor deployed, as of now; with
    ``log_source``, the check configured to read the log from there."""
    now = datetime.now(UTC)
    with env.pg.connect("orders") as connection:
        seed_postgres(connection, total=total, outstanding=outstanding, now=now, **seed)
    write_log(env.log_path, processor_log(scenario, now=now))
    _deploy_processor(env)
    if log_source is not None:
        env.configure(log_source=log_source)


def _stand_in(env: OrdersEnv) -> ProcessorStandIn:
    return ProcessorStandIn(
        env.k8s,
        namespace=env.namespace,
        deployment="order-processor",
        log_path=env.log_path,
        process_orders=lambda count: process_postgres_orders(env.pg.dsn("orders"), count),
    )


def _task_states(run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def _xcom(run: Any, task_id: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id, key="return_value")
            .one_or_none()
        )
        return XComModel.deserialize_value(row) if row is not None else None


def test_stuck_processor_is_restarted_once_inside_business_hours_and_recovers(
    orders_env: OrdersEnv, run_order_dag: Callable[..., Any]
) -> None:
    env = orders_env
    with time_machine.travel(INSIDE_HOURS, tick=True):
        _seed_processor(env, "stuck", total=2000, outstanding=40, log_source="kubernetes")

        with _stand_in(env) as processor:
            run = run_order_dag(DAG_ID)
        assert str(run.state) == "success", _task_states(run)
        assert processor.recovered.is_set()

        states = _task_states(run)
        assert states["restart_processor"] == "success"
        assert states["verify_recovery"] == "success"
        assert states["notify_ops"] == "skipped"
        assert len(env.restarts()) == 1
        restart = _xcom(run, "restart_processor")
        assert restart["restarted"] is True
        assert restart["incident"] == "stuck:order-11:error-12"
        verification = _xcom(run, "verify_recovery")
        assert verification["status"] == "recovered"
        assert verification["outstanding"] == 35

        developers = env.sink.messages("developers")
        assert len(developers) == 1
        assert "order 11" in developers[0]["text"]
        assert "Error #12" in developers[0]["text"]
        assert "Error Processing Order. Error #12" in developers[0]["text"]  # the excerpt
        report = env.sink.messages("non_urgent")
        assert any("Recovery verified" in message["text"] for message in report)
        assert env.sink.messages("urgent") == []

        # The next run finds the processor stuck on the same order with the same error again: no second
        # restart (it did not help), on-call is paged instead.
        env.sink.clear()
        write_log(env.log_path, processor_log("stuck", now=datetime.now(UTC)))
        second = run_order_dag(DAG_ID)
        assert str(second.state) == "success", _task_states(second)
        assert len(env.restarts()) == 1
        assert _xcom(second, "restart_processor")["already_done"] is True
        assert _task_states(second)["verify_recovery"] == "skipped"
        urgent = env.sink.messages("urgent")
        assert len(urgent) == 1
        assert "same incident" in urgent[0]["text"]


def test_stuck_processor_outside_business_hours_is_not_restarted(
    orders_env: OrdersEnv, run_order_dag: Callable[..., Any]
) -> None:
    env = orders_env
    with time_machine.travel(OUTSIDE_HOURS, tick=True):
        _seed_processor(env, "stuck", total=500, outstanding=40, log_source="kubernetes")

        run = run_order_dag(DAG_ID)
        assert str(run.state) == "success", _task_states(run)
        assert env.restarts() == []
        restart = _xcom(run, "restart_processor")
        assert restart["restarted"] is False
        assert "outside business hours" in restart["reason"]
        # Tuesday 09:00 in Berlin is the next moment a restart is allowed.
        assert restart["allowed_from"] == "2026-11-24T08:00:00+00:00"
        assert _task_states(run)["verify_recovery"] == "skipped"
        assert len(env.sink.messages("developers")) == 1
        report = " ".join(message["text"] for message in env.sink.messages("non_urgent"))
        assert "allowed from 2026-11-24T08:00:00+00:00" in report


def test_overloaded_processor_goes_to_ops_with_rotated_logs(
    orders_env: OrdersEnv, run_order_dag: Callable[..., Any]
) -> None:
    env = orders_env
    with time_machine.travel(INSIDE_HOURS, tick=True):
        now = datetime.now(UTC)
        with env.pg.connect("orders") as connection:
            seed_postgres(connection, total=8000, outstanding=5000, now=now)
        lines = processor_log("overloaded", now=now)
        # The run started before the last rotation: its Startup is in a zstd archive, the rest in .1 and the log.
        startup = max(index for index, line in enumerate(lines) if "Startup..." in line)
        archive = env.log_dir / "order_processing.20261123T090500.1.log.zst"
        archive.write_bytes(
            zstandard.ZstdCompressor().compress("".join(f"{x}\n" for x in lines[: startup + 3]).encode())
        )
        write_log(env.log_dir / "order_processing.log.1", lines[startup + 3 : startup + 40])
        write_log(env.log_path, lines[startup + 40 :])
        _deploy_processor(env)

        run = run_order_dag(DAG_ID)
        assert str(run.state) == "success", _task_states(run)
        states = _task_states(run)
        assert states["notify_ops"] == "success"
        assert states["notify_developers"] == "skipped"
        diagnosis = _xcom(run, "classify_backlog")
        assert diagnosis["verdict"]["verdict"] == "overloaded"
        assert diagnosis["capacity"]["seconds_per_order_source"] == "observed"
        log_summary = _xcom(run, "read_processor_log")
        assert len(log_summary["sources"]) == 3
        assert log_summary["orders_processed"] == 60
        ops = env.sink.messages("ops")
        assert len(ops) == 1
        assert "5000" in ops[0]["text"]
        assert f"every *{diagnosis['capacity']['suggested_interval_minutes']} min*" in ops[0]["text"]
        assert env.restarts() == []


@pytest.mark.parametrize(
    ("scenario", "outstanding", "verdict", "told"),
    [
        pytest.param("healthy", 30, "healthy", [], id="healthy"),
        pytest.param("errors", 30, "errors", ["developers"], id="errors"),
    ],
)
def test_processor_that_makes_progress_is_never_restarted(
    orders_env: OrdersEnv,
    run_order_dag: Callable[..., Any],
    scenario: str,
    outstanding: int,
    verdict: str,
    told: list[str],
) -> None:
    env = orders_env
    with time_machine.travel(INSIDE_HOURS, tick=True):
        _seed_processor(env, scenario, total=300, outstanding=outstanding, oldest_minutes=30)
        run = run_order_dag(DAG_ID)
    assert str(run.state) == "success", _task_states(run)
    assert _xcom(run, "classify_backlog")["verdict"]["verdict"] == verdict
    assert _xcom(run, "restart_processor")["restarted"] is False
    assert _task_states(run)["verify_recovery"] == "skipped"
    assert env.restarts() == []
    channels = sorted({message["channel"] for message in env.sink.messages()})
    # Errors are part of an incident's record (non_urgent); a healthy hourly run tells nobody.
    assert channels == sorted([*told, "non_urgent"] if told else [])


@pytest.mark.parametrize(
    "conf",
    [
        pytest.param({"outstanding_threshold": "1; DROP TABLE orders"}, id="sql-in-threshold"),
        pytest.param({"log_path": "/var/log/orders/x.log'; DROP TABLE orders; --"}, id="sql-in-path"),
    ],
)
def test_malicious_params_are_refused_before_the_run_starts(
    orders_env: OrdersEnv, run_order_dag: Callable[..., Any], conf: dict[str, Any]
) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    env = orders_env
    with env.pg.connect("orders") as connection:
        seed_postgres(connection, total=100, outstanding=10)
    with pytest.raises(ParamValidationError, match="DROP TABLE"):
        run_order_dag(DAG_ID, run_conf=conf)
    assert env.orders_table_exists()
    assert env.outstanding() == 10


def test_log_path_outside_the_roots_fails_the_run_without_reading_anything(
    orders_env: OrdersEnv, run_order_dag: Callable[..., Any]
) -> None:
    env = orders_env
    with env.pg.connect("orders") as connection:
        seed_postgres(connection, total=100, outstanding=10)
    run = run_order_dag(DAG_ID, run_conf={"log_path": "/etc/passwd"})
    assert str(run.state) == "failed"
    states = _task_states(run)
    assert states["resolve_settings"] == "failed"
    assert states["measure_backlog"] == "upstream_failed"
    assert states["read_processor_log"] == "upstream_failed"
    # The failure notifier told the DAG's owner why (bad input fails at once, no retries).
    failures = [message["text"] for message in env.sink.messages()]
    assert any("outside the allowed log directories" in text for text in failures)


def _stuck_settings(env: OrdersEnv, **overrides: Any) -> dict[str, Any]:
    from toilless.common.config import deep_merge, read_defaults
    from toilless.sops.order_backlog_check.settings import resolve_settings

    config = deep_merge(
        read_defaults("order_backlog_check"),
        {
            "log": {"path": str(env.log_path), "allowed_roots": [str(env.log_dir)]},
            "kubernetes": {"namespace": env.namespace, "deployment": "order-processor"},
            **overrides,
        },
    )
    return resolve_settings(config, read_defaults("toilless"), {})


def test_a_retried_restart_step_does_not_restart_again(orders_env: OrdersEnv) -> None:
    from toilless.sops.order_backlog_check.steps import restart_if_allowed

    env = orders_env
    _deploy_processor(env)
    settings = _stuck_settings(env)
    with time_machine.travel(INSIDE_HOURS, tick=True):
        run_started = datetime.now(UTC) - timedelta(minutes=1)
        first = restart_if_allowed(settings, STUCK_DIAGNOSIS, run_started_at=run_started)
        # A retry of the same run (the first try's answer was lost): no second restart, but still "restarted"
        # so the recovery is verified.
        retry = restart_if_allowed(settings, STUCK_DIAGNOSIS, run_started_at=run_started)
        # The next hourly run, same incident: not again, and it says so (the report pages on-call).
        next_run = restart_if_allowed(settings, STUCK_DIAGNOSIS, run_started_at=datetime.now(UTC))
    assert first["restarted"] is True
    assert retry["restarted"] is True
    assert retry["restarted_at"] == first["restarted_at"]
    assert "earlier try" in retry["reason"]
    assert next_run["restarted"] is False
    assert next_run["already_done"] is True
    assert next_run["previous_marker"]["incident"] == "stuck:order-11:error-12"
    assert len(env.restarts()) == 1


def test_no_restart_inside_the_maintenance_window_even_in_business_hours(orders_env: OrdersEnv) -> None:
    from toilless.sops.order_backlog_check.steps import restart_if_allowed

    env = orders_env
    _deploy_processor(env)
    every_day = {
        "days": ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
        "start": "00:00",
        "end": "23:59",
        "timezone": "UTC",
    }
    settings = _stuck_settings(env, business_hours=every_day)
    with time_machine.travel(datetime(2026, 11, 29, 3, 0, tzinfo=UTC), tick=False):  # Sunday 03:00 UTC
        decision = restart_if_allowed(settings, STUCK_DIAGNOSIS)
    assert decision["restarted"] is False
    assert "maintenance window" in decision["reason"]
    assert decision["allowed_from"] == "2026-11-29T04:00:00+00:00"
    assert env.restarts() == []


def test_dry_run_says_what_it_would_do_and_restarts_nothing(orders_env: OrdersEnv) -> None:
    from toilless.sops.order_backlog_check.steps import restart_if_allowed

    env = orders_env
    _deploy_processor(env)
    settings = {**_stuck_settings(env), "dry_run": True}
    with time_machine.travel(INSIDE_HOURS, tick=True):
        decision = restart_if_allowed(settings, STUCK_DIAGNOSIS)
    assert decision["restarted"] is False
    assert decision["reason"].startswith("dry run: would restart")
    assert env.restarts() == []


def _policy_allowing_now() -> dict[str, Any]:
    """Business hours around the real now and a maintenance window days away (the command runs in real time)."""
    now = datetime.now(UTC)
    every_day = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    return {
        "business_hours": {
            "days": every_day,
            "start": f"{now - timedelta(hours=1):%H:%M}",
            "end": f"{now + timedelta(hours=2):%H:%M}",
            "timezone": "UTC",
        },
        "maintenance_window": {
            "days": [every_day[(now.weekday() + 3) % 7]],
            "start": "02:00",
            "end": "04:00",
            "timezone": "UTC",
        },
    }


def test_silent_processor_is_restarted_by_the_configured_command(
    orders_env: OrdersEnv, run_order_dag: Callable[..., Any], tmp_path: Path
) -> None:
    """crashed/silent from a plain log file; the restart is a command (no Kubernetes), run once, then verified.

    No time travel here: the command is another process, which writes real timestamps.
    """
    env = orders_env
    script = tmp_path / "restart_processor.py"
    calls = tmp_path / "restart_calls.txt"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from datetime import datetime, UTC\n"
        "from sandbox.order_backlog_check_data import process_postgres_orders, recovery_lines\n"
        f"open({str(calls)!r}, 'a').write('restart\\n')\n"
        f"process_postgres_orders({env.pg.dsn('orders')!r}, 3)\n"
        f"with open({str(env.log_path)!r}, 'a') as log:\n"
        "    log.writelines(line + '\\n' for line in recovery_lines(start=datetime.now(UTC), first_order=500))\n"
    )
    now = datetime.now(UTC)
    with env.pg.connect("orders") as connection:
        seed_postgres(connection, total=500, outstanding=300, now=now)
    write_log(env.log_path, processor_log("crashed_silent", now=now))
    env.configure(
        restart={
            "method": "command",
            "command": [sys.executable, str(script)],
            "marker_variable": f"order_backlog_marker_{env.namespace}",
        },
        **_policy_allowing_now(),
    )
    run = run_order_dag(DAG_ID)
    assert str(run.state) == "success", _task_states(run)
    assert _xcom(run, "classify_backlog")["verdict"]["verdict"] == "crashed_silent"
    restart = _xcom(run, "restart_processor")
    assert restart["restarted"] is True
    assert restart["method"] == "command"
    assert calls.read_text().count("restart") == 1
    assert _xcom(run, "verify_recovery")["status"] == "recovered"
    assert env.outstanding() == 297
    assert len(env.sink.messages("developers")) == 1
