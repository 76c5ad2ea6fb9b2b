"""log_rotation on a real running Airflow (``make run``'s sandbox): the demo log mount is rotated (or reported).

Proves the pieces dag.test() does not: the sandbox's demo_logs service and its Variable, the scheduler running the
mapped per-host tasks on LocalExecutor, and a writer (WatchedFileHandler in the sandbox) that keeps writing.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sandbox.log_rotation_data import write_log
from toilless.sops.log_rotation import naming

pytestmark = pytest.mark.integration


def test_demo_logs_are_rotated_by_the_running_airflow(live_airflow: Any) -> None:
    demo = Path(live_airflow.published["demo_logs"])
    # The live Airflow is shared by the session and the DAG's own scheduled run (the latest past slot, created when
    # the DAG is unpaused) may be rotating the demo logs right now: let it finish (else it rotates what this test
    # writes, and this run finds nothing due), then give both files something to rotate again.
    _wait_until_no_run_is_active(live_airflow)
    for name, kind in (("app.log", "app"), ("order_processing.log", "orders")):
        size = (demo / name).stat().st_size
        if size <= 1 << 20:
            write_log(demo / name, kind, (1 << 20) - size + 4096, start=datetime.now(UTC))
        assert (demo / name).stat().st_size > 1 << 20
    before = {entry.name for entry in demo.iterdir()}
    run = live_airflow.trigger("log_rotation", conf={"log_sets": ["app", "order_processing"]})
    finished = live_airflow.wait_for_run("log_rotation", run["dag_run_id"], timeout=240)
    tasks = live_airflow.task_instances("log_rotation", run["dag_run_id"])
    assert finished["state"] == "success", {task: ti["state"] for task, ti in tasks.items()}
    reports = live_airflow.slack_sink.wait_for(
        lambda m: m["channel"] == "compliance" and "Log rotation" in m["text"] and run["dag_run_id"] in str(m),
        timeout=60,
    )
    text = reports[-1]["text"]
    archives = [entry.name for entry in demo.iterdir() if (p := naming.parse_rotated(entry.name)) and p.is_archive]
    assert not [entry.name for entry in demo.iterdir() if naming.is_tmp(entry.name)]
    if "inside the maintenance window" in text:
        # The sandbox's Variable comes from the environment (it cannot be changed through the API), and the default
        # maintenance window (Sunday 02:00-04:00 UTC) holds every log set at the action gate: a report of what
        # would happen.
        assert "rotation not done, held by the action gate: inside the maintenance window" in text
        assert f"would rotate `{demo / 'app.log'}`" in text
        assert set(archives) <= before
    else:
        assert "*app*: 1 file(s) rotated" in text
        assert "freed" in text
        assert any(name.startswith("app.log.") for name in set(archives) - before)
        assert any(name.startswith("order_processing.log.") for name in set(archives) - before)


def _wait_until_no_run_is_active(live_airflow: Any, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        response = live_airflow.api(
            "GET", "/api/v2/dags/log_rotation/dagRuns", params=[("state", "queued"), ("state", "running")]
        )
        response.raise_for_status()
        active = [run["dag_run_id"] for run in response.json()["dag_runs"]]
        if not active:
            return
        assert time.monotonic() < deadline, f"log_rotation runs still active after {timeout:.0f}s: {active}"
        time.sleep(2)
