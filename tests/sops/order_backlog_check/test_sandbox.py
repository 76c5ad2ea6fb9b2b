"""The sandbox's orders service (what `make run` gives order_backlog_check): idempotent across restarts, and its
Connections and Variable lead the DAG's own steps to a stuck processor and a restartable Deployment."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sandbox.service import SandboxContext
from sandbox.services.order_backlog_check import OrdersService

pytestmark = pytest.mark.integration


def _outstanding(database: Path) -> int:
    with sqlite3.connect(database) as connection:
        count = connection.execute("SELECT count(*) FROM orders WHERE status IN ('new', 'processing')").fetchone()[0]
    connection.close()
    return int(count)


def test_orders_service_restarts_cleanly_and_feeds_the_dag_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from toilless.common.config import deep_merge, include_path, read_defaults
    from toilless.hooks.kubernetes import KubernetesDeploymentHook
    from toilless.hooks.orders_db import OrdersDbHook
    from toilless.sops.order_backlog_check.settings import resolve_settings
    from toilless.sops.order_backlog_check.steps import read_processor_run

    ctx = SandboxContext(home=tmp_path, preferred_ports=False)
    for _ in range(2):  # a second `make run` on the same home starts from the same demo state
        service = OrdersService()
        service.start(ctx)
        try:
            database = Path(ctx.published["orders"]["database"])
            assert _outstanding(database) == 40
            for conn_id, connection in service.connections(ctx).items():
                monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
            override = json.loads(service.variables(ctx)["toilless_order_backlog_check"])
            settings = resolve_settings(
                deep_merge(read_defaults("order_backlog_check"), override), read_defaults("toilless"), {}
            )
            summary = read_processor_run(settings)
            assert (summary.tail_error_order, summary.tail_error_code) == ("11", "12")
            backlog = OrdersDbHook(
                orders_conn_id=settings["orders_conn_id"], sql_path=include_path(settings["backlog_sql"])
            ).measure_backlog(now=datetime.now(UTC), oldest_age_minutes=120)
            assert backlog.outstanding == 40
            assert backlog.overdue > 0
            hook = KubernetesDeploymentHook.from_settings(settings["kubernetes"])
            assert hook.kubernetes_marker() == {}
            assert os.environ["AIRFLOW_CONN_ORDERS_DB"]
        finally:
            service.stop()
