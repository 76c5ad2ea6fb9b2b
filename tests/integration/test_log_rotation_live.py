"""log_rotation on a real running Airflow (``make run``'s sandbox): the demo log mount gets rotated for real.

Proves the pieces dag.test() does not: the sandbox's demo_logs service and its Variable, the scheduler running the
mapped per-host tasks on LocalExecutor, and a writer (WatchedFileHandler in the sandbox) that keeps writing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from toilless.logrotation import naming

pytestmark = pytest.mark.integration


def test_demo_logs_are_rotated_by_the_running_airflow(live_airflow: Any) -> None:
    demo = Path(live_airflow.published["demo_logs"])
    assert (demo / "app.log").stat().st_size > 1 << 20
    assert (demo / "order_processing.log").stat().st_size > 1 << 20
    # The sandbox may be inside the maintenance window (then runs only report); this test wants a real rotation.
    variable = live_airflow.api("GET", "/api/v2/variables/toilless_log_rotation")
    assert variable.status_code == 200, variable.text
    override = {**json.loads(variable.json()["value"]), "respect_maintenance_window": False}
    patched = live_airflow.api(
        "PATCH",
        "/api/v2/variables/toilless_log_rotation",
        json={"key": "toilless_log_rotation", "value": json.dumps(override)},
    )
    assert patched.status_code == 200, patched.text
    run = live_airflow.trigger("log_rotation", conf={"log_sets": ["app", "order_processing"]})
    finished = live_airflow.wait_for_run("log_rotation", run["dag_run_id"], timeout=240)
    tasks = live_airflow.task_instances("log_rotation", run["dag_run_id"])
    assert finished["state"] == "success", {task: ti["state"] for task, ti in tasks.items()}
    archives = [entry.name for entry in demo.iterdir() if (p := naming.parse_rotated(entry.name)) and p.is_archive]
    assert any(name.startswith("app.log.") for name in archives)
    assert any(name.startswith("order_processing.log.") for name in archives)
    assert not [entry.name for entry in demo.iterdir() if naming.is_tmp(entry.name)]
    reports = live_airflow.slack_sink.wait_for(
        lambda m: m["channel"] == "compliance" and "Log rotation" in m["text"] and run["dag_run_id"] in str(m),
        timeout=60,
    )
    assert "*app*: 1 file(s) rotated" in reports[-1]["text"]
    assert "freed" in reports[-1]["text"]
