"""Per-host Celery queues: with host_queues declared, the DAG routes each host's file tasks to its queue."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]

PARSE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags["log_rotation"]
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()},
                  "queues": {task.task_id: task.queue for task in dag.tasks}}))
"""


def test_each_host_queue_gets_its_own_file_tasks(tmp_path: Path) -> None:
    include = tmp_path / "include"
    shutil.copytree(REPO / "include", include)
    config_file = include / "config" / "log_rotation.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["host_queues"] = ["logs-web-1"]
    config_file.write_text(yaml.safe_dump(config))
    env = {
        **os.environ,
        "TOILLESS_INCLUDE_DIR": str(include),
        "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)]),
    }
    out = subprocess.run(
        [sys.executable, "-c", PARSE, str(REPO / "dags" / "log_rotation.py")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    parsed = json.loads(out.stdout.strip().splitlines()[-1])
    assert parsed["errors"] == {}
    queues = parsed["queues"]
    for step in ("rotate_logs", "apply_retention", "measure_mount_usage"):
        assert queues[f"{step}_on_logs_web_1"] == "logs-web-1"
        assert queues[step] == "default"
    # Planning, selection and reporting touch no files: they stay on the default queue.
    for task_id in ("plan_rotation", "select_host_work_on_logs_web_1", "report_rotation", "warn_low_storage"):
        assert queues[task_id] == "default"
