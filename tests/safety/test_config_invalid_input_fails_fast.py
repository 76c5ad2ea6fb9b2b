"""Invalid configuration or Params fail a task at once, with a clear message, and are never retried.

Before, a negative threshold or a malformed Variable was retried 3 times over 4.5 minutes before the run failed. One
mechanism decides it for every task of every DAG (``toilless.common.dag_defaults.task`` turns
``toilless.common.errors.InvalidInput`` into ``AirflowFailException``, which the task runner never retries); these
tests attack each DAG's settings step with a bad Variable and check that the task's own callable raises it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DAG_IDS = (
    "aws_cost_review",
    "dns_failover",
    "log_rotation",
    "order_backlog_check",
    "postgres_connections",
    "postgres_replica_lag",
    "rds_storage_guard",
    "redis_connections",
    "redis_memory",
    "release_capacity_plan",
    "service_error_rate",
)


@pytest.fixture(scope="module")
def dags() -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    found = {}
    for dag_id in DAG_IDS:
        bag = DagBag(dag_folder=str(REPO / "dags" / f"{dag_id}.py"))
        assert not bag.import_errors, bag.import_errors
        found[dag_id] = bag.dags[dag_id]
    return found


@contextmanager
def _task_context(dag: Any, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The part of a task's context these settings steps read, made current as in a real task."""
    from airflow.sdk.execution_time.context import set_current_context

    now = datetime.now(UTC)
    context = {
        "params": params,
        "dag": dag,
        "run_id": "manual__test",
        "dag_run": SimpleNamespace(run_after=now, start_date=now, logical_date=None, conf={}),
        "ti": SimpleNamespace(map_index=-1),
    }
    with set_current_context(context):  # type: ignore[arg-type]
        yield context


def _fails_fast(call: Callable[[], Any], *fragments: str) -> str:
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException) as caught:
        call()
    message = str(caught.value)
    assert "not retried" in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def _set_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: Any) -> None:
    monkeypatch.setenv(f"AIRFLOW_VAR_{name.upper()}", value if isinstance(value, str) else json.dumps(value))


MALFORMED = "{not json"


@pytest.mark.parametrize("variable", [pytest.param(MALFORMED, id="malformed-json"), pytest.param([1], id="not-object")])
@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_config_malformed_variable_fails_the_first_task_at_once(
    dags: dict[str, Any], dag_id: str, variable: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set_variable(monkeypatch, f"toilless_{dag_id}", variable)
    dag = dags[dag_id]
    first = {
        "aws_cost_review": "resolve_review",
        "log_rotation": "plan_rotation",
        "rds_storage_guard": "measure_storage",
    }.get(dag_id, "resolve_settings")
    task = dag.get_task(first)
    with _task_context(dag, {}) as context:
        kwargs = {"host_queues": []} if dag_id == "log_rotation" else dict(context)
        if first == "resolve_settings":
            kwargs = {"params": {}}
        _fails_fast(lambda: task.python_callable(**kwargs), f"toilless_{dag_id}")


def test_config_negative_threshold_in_order_backlog_variable_fails_at_once(
    dags: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _set_variable(monkeypatch, "toilless_order_backlog_check", {"thresholds": {"outstanding_orders": -5}})
    task = dags["order_backlog_check"].get_task("resolve_settings")
    _fails_fast(lambda: task.python_callable(params={}), "outstanding_orders >= 0")


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        pytest.param({"threshold_percent": -5}, "must not be negative", id="negative-threshold"),
        pytest.param({"lookback_months": "many"}, "lookback_months must be a number", id="not-a-number"),
        pytest.param({"schedule": {"timezone": "Mars/Olympus"}}, "Mars/Olympus", id="unknown-timezone"),
    ],
)
def test_config_bad_cost_review_variable_fails_at_once(
    dags: dict[str, Any], monkeypatch: pytest.MonkeyPatch, override: dict[str, Any], fragment: str
) -> None:
    _set_variable(monkeypatch, "toilless_aws_cost_review", override)
    dag = dags["aws_cost_review"]
    with _task_context(dag, {}) as context:
        _fails_fast(lambda: dag.get_task("resolve_review").python_callable(**context), fragment)


def test_config_future_as_of_is_refused_at_once(dags: dict[str, Any]) -> None:
    """#9: a review "as of" a future date would query empty months and post an all-clear."""
    dag = dags["aws_cost_review"]
    future = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    with _task_context(dag, {"as_of": future}) as context:
        _fails_fast(lambda: dag.get_task("resolve_review").python_callable(**context), future, "in the future")


def test_config_negative_rds_threshold_fails_at_once(dags: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    _set_variable(monkeypatch, "toilless_rds_storage_guard", {"policy": {"warning_used_pct": -5}})
    dag = dags["rds_storage_guard"]
    measured = {"measured_at": datetime.now(UTC).isoformat(), "instances": []}
    params = {key: None for key in ("warning_pct", "critical_pct", "growth_step_pct", "cap_gib", "auto_grow")}
    with _task_context(dag, params) as context:
        task = dag.get_task("decide_action")
        from airflow.sdk.exceptions import AirflowFailException

        with pytest.raises(AirflowFailException, match="warning"):
            task.python_callable(measured, **context)


def test_config_malformed_maintenance_window_fails_log_rotation_at_once(
    dags: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _set_variable(
        monkeypatch,
        "toilless_toilless",
        {"maintenance_window": {"days": ["funday"], "start": "01:00", "end": "02:00", "timezone": "UTC"}},
    )
    dag = dags["log_rotation"]
    with _task_context(dag, {"dry_run": False}):
        _fails_fast(lambda: dag.get_task("plan_rotation").python_callable(host_queues=[]), "funday")


def test_config_every_python_task_of_every_dag_fails_fast(dags: dict[str, Any]) -> None:
    """The one mechanism covers every Python task of every SOP DAG (a new task with plain ``@task`` fails here)."""
    from airflow.dag_processing.dagbag import DagBag

    from toilless.common.dag_defaults import FAIL_FAST_MARK

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert not bag.import_errors, bag.import_errors
    unguarded = [
        f"{dag_id}.{task.task_id}"
        for dag_id, dag in bag.dags.items()
        for task in dag.tasks
        if hasattr(task, "python_callable") and not getattr(task.python_callable, FAIL_FAST_MARK, False)
    ]
    assert unguarded == []
    assert set(DAG_IDS) <= set(bag.dags)


def test_config_invalid_input_fails_the_real_task_on_its_first_try(
    run_dag: Callable[..., Any], set_variable: Callable[[str, Any], None]
) -> None:
    """End to end through Airflow's task runner: one try, failed, the reason in the failure; no retry waited for."""
    set_variable("toilless_order_backlog_check", MALFORMED)
    run = run_dag("order_backlog_check")
    ti = next(ti for ti in run.get_task_instances() if ti.task_id == "resolve_settings")
    assert str(ti.state) == "failed"
    assert ti.try_number == 1
    assert str(run.state) == "failed"
    assert ti.max_tries == 2  # the DAG does retry other failures: this one was not retried on purpose


def test_config_as_of_beyond_cost_explorer_history_is_refused_at_once(dags: dict[str, Any]) -> None:
    """#10: an as-of a year or more back asks Cost Explorer for months it no longer holds; real AWS answers
    ValidationException (moto answers), which was retried. Refused in the first task, relative to the run's date."""
    dag = dags["aws_cost_review"]
    old = (datetime.now(UTC) - timedelta(days=400)).date().isoformat()
    with _task_context(dag, {"as_of": old}) as context:
        _fails_fast(
            lambda: dag.get_task("resolve_review").python_callable(**context),
            old,
            "13 months of history",
            "earliest as-of",
        )
