"""order_backlog_check on a real running Airflow with the sandbox (`make run`'s services): SQLite orders database,
the stuck processor's log, its Deployment in the Kubernetes emulator; verification deferred to the real triggerer."""

from __future__ import annotations

import secrets
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sandbox.order_backlog_check_data import processor_log, seed_sqlite, write_log
from tests.fixtures.live_airflow import LiveAirflow

pytestmark = pytest.mark.integration

DAG_ID = "order_backlog_check"


def _count_orders(live: LiveAirflow, *, outstanding_only: bool) -> int:
    database = Path(live.published["orders"]["database"])
    where = " WHERE status IN ('new', 'processing')" if outstanding_only else ""
    with sqlite3.connect(database) as connection:
        count = connection.execute(f"SELECT count(*) FROM orders{where}").fetchone()[0]  # noqa: S608 (fixed text)
    connection.close()
    return int(count)


def _outstanding(live: LiveAirflow) -> int:
    return _count_orders(live, outstanding_only=True)


def _xcom(live: LiveAirflow, run_id: str, task_id: str) -> Any:
    response = live.api(
        "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
    )
    assert response.status_code == 200, response.text
    return response.json()["value"]


def _post_run(live: LiveAirflow, conf: dict[str, Any]) -> Any:
    """POST a run; retried (3 tries) only on a 500, which Airflow on SQLite answers when its DB stays locked for
    more than 5 s (seen while every DAG's first scheduled runs start at once)."""
    response = None
    for _ in range(3):
        response = live.api("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": conf})
        if response.status_code != 500:
            break
        time.sleep(2)
    return response


def test_malicious_conf_is_refused_by_the_api(live_airflow: LiveAirflow) -> None:
    live_airflow.wait_for_dag(DAG_ID)
    # Every order, not the outstanding ones: a scheduled run of the shared sandbox may restart the processor
    # meanwhile, and its stand-in then processes a few orders (a status change, never a deletion).
    before = _count_orders(live_airflow, outstanding_only=False)
    for conf in (
        {"outstanding_threshold": "1; DROP TABLE orders"},
        {"log_path": "/tmp/x.log'; DROP TABLE orders; --"},
    ):
        response = _post_run(live_airflow, conf)
        assert response.status_code == 400, response.text
    assert _count_orders(live_airflow, outstanding_only=False) == before


def _active_runs(live: LiveAirflow) -> list[dict[str, Any]]:
    response = live.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns", params={"state": ["queued", "running"], "limit": 100})
    response.raise_for_status()
    return list(response.json()["dag_runs"])


def _runs_started_between(live: LiveAirflow, after: datetime, before: str, exclude: str) -> list[str]:
    response = live.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns", params={"limit": 100})
    response.raise_for_status()
    return [
        run["dag_run_id"]
        for run in response.json()["dag_runs"]
        if run["dag_run_id"] != exclude
        and run.get("start_date")
        and after <= datetime.fromisoformat(run["start_date"]) <= datetime.fromisoformat(before)
    ]


def _make_processor_stuck(live: LiveAirflow, stuck_order: int) -> datetime:
    """This test's precondition, set by the test: the sandbox's orders and processor log as the demo starts them,
    stuck on an order no earlier run has seen. The live sandbox is shared by the session and its DAGs run on schedule
    (hourly at :20, and once at start-up): any earlier run inside business hours restarted the processor, whose
    stand-in then appended a healthy run to this log and processed orders. A fresh order number also makes the
    incident new, so no earlier restart marker (``toilless.io/restart-incident``) applies, and this run's Slack
    message cannot be confused with an earlier one. Returns the moment the precondition was set."""
    # A run still going would read or restart the processor in the middle of this test: wait for it to finish.
    deadline = time.monotonic() + 300
    while active := _active_runs(live):
        assert time.monotonic() < deadline, f"runs of {DAG_ID} still active after 300 s: {active}"
        time.sleep(2)
    now = datetime.now(UTC)
    orders = live.published["orders"]
    seed_sqlite(Path(orders["database"]), outstanding=40, now=now)
    # processor_log's stuck order is the one after the first 10 it processed.
    write_log(Path(orders["log"]), processor_log("stuck", now=now, first_order=stuck_order - 10))
    return now


# Twice: the second run finds the sandbox after the first one's restart (as after any earlier run in the session),
# and must still start from a stuck processor.
@pytest.mark.parametrize("repeat", [pytest.param(1, id="first"), pytest.param(2, id="again-on-the-same-sandbox")])
def test_sandbox_stuck_processor_run(live_airflow: LiveAirflow, repeat: int) -> None:
    """The sandbox's stuck processor, diagnosed as stuck; restarted and verified when the configured policy allows a
    restart at that moment, otherwise refused with the reason (and when it will be allowed).

    Params may only narrow business hours, never widen them, so the test cannot move them around now: it checks the
    restart against the gate's own time policy at the moment of restarting. The second case may also find the
    gate's cool-down or circuit breaker closed by the first case's restart of the same Deployment.
    """
    from toilless.common import gate
    from toilless.common.config import read_defaults
    from toilless.common.policies import action_allowed

    # Not `random`: pytest-randomly reseeds it identically before every test.
    stuck_order = 100_000 + secrets.randbelow(900_000)
    for _attempt in range(2):
        now = _make_processor_stuck(live_airflow, stuck_order)
        before = _outstanding(live_airflow)
        run_id = f"live-{now:%Y%m%dT%H%M%S}-{stuck_order}"
        live_airflow.trigger(DAG_ID, conf={}, run_id=run_id)
        run = live_airflow.wait_for_run(DAG_ID, run_id, timeout=300)
        # The hourly scheduled run can start between the setup and this run (max_active_runs=1 runs them one
        # after the other) and restart the processor first: then the precondition did not hold; set it again.
        if not _runs_started_between(live_airflow, now, run["start_date"], exclude=run_id):
            break
        stuck_order += 1
    else:
        pytest.fail("a scheduled run of the DAG came between this test's setup and its run twice")
    states = {task_id: ti["state"] for task_id, ti in live_airflow.task_instances(DAG_ID, run_id).items()}
    assert run["state"] == "success", states

    diagnosis = _xcom(live_airflow, run_id, "classify_backlog")
    assert diagnosis["verdict"]["verdict"] == "stuck", diagnosis["verdict"]
    assert diagnosis["verdict"]["stuck_order"] == str(stuck_order)
    live_airflow.slack_sink.wait_for(
        lambda message: message["channel"] == "developers" and f"order {stuck_order}" in message["text"], timeout=30
    )
    restart = _xcom(live_airflow, run_id, "restart_processor")
    timing = gate.time_policy(read_defaults("toilless"), read_defaults("order_backlog_check"))
    expected = action_allowed(
        datetime.fromisoformat(restart["gate"]["checked_at"]),
        business_hours=timing.business_hours,
        maintenance_window=timing.maintenance_window,
    )
    if not restart["restarted"]:
        assert states["verify_recovery"] == "skipped"
        if expected.allowed:
            # Inside the allowed hours only the count-based checks may refuse: the first case (or a scheduled run)
            # restarted this Deployment moments ago.
            assert restart["gate"]["check"] in (gate.COOLDOWN, gate.CIRCUIT_BREAKER), restart
        else:
            assert expected.reason in restart["reason"], restart
            assert restart["allowed_from"] == expected.allowed_from.isoformat()
        return
    assert expected.allowed, restart
    assert states["verify_recovery"] == "success"
    verification = _xcom(live_airflow, run_id, "verify_recovery")
    # Only the trigger produces this event: the sensor deferred to the triggerer and was resumed by it.
    assert verification["status"] == "recovered"
    assert verification["looks"] >= 1
    assert _outstanding(live_airflow) < before
