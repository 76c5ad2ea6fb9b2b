"""The distributed deployment's shape, for real: CeleryExecutor on PostgreSQL and Redis, with a per-host queue.

docker-compose.yaml cannot run here (no Docker engine), so this runs the same components as plain processes on
loopback: api-server, scheduler, dag-processor and two Celery workers, one on the default queue and one listening only
on a log host's queue (as `airflow-worker-logs-host1` does). A task routed to that queue must run on that worker.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sandbox.launcher import airflow_environment
from sandbox.ports import HOST, free_port, wait_for_port

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        pytest.fail("redis-server is missing (make test installs it)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [redis_server, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"redis://{HOST}:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def celery_airflow(tmp_path_factory: pytest.TempPathFactory, postgres_server, redis_url: str) -> Iterator[dict]:
    home = tmp_path_factory.mktemp("celery-airflow")
    dags = home / "dags"
    dags.mkdir()
    shutil.copy(HERE / "celery_queue_probe.py.txt", dags / "celery_queue_probe.py")
    postgres_server.create_database("airflow_celery")
    database = f"postgresql+psycopg2://postgres@{HOST}:{postgres_server.port}/airflow_celery"
    port = free_port()
    password = "celery-test"
    env = airflow_environment(home, port, password, dict(os.environ))
    env.pop("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", None)  # the test session's extra bundle
    # The launcher's environment is for SQLite; its connect arguments (a lock timeout) mean nothing to PostgreSQL.
    env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS", None)
    env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC", None)
    env.update(
        {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
            "AIRFLOW__CELERY__BROKER_URL": redis_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://postgres@{HOST}:{postgres_server.port}/airflow_celery",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        }
    )
    logs = home / "logs"
    logs.mkdir(exist_ok=True)
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    commands = {
        "api-server": ["api-server"],
        "scheduler": ["scheduler"],
        "dag-processor": ["dag-processor"],
        "worker-default": ["celery", "worker", "--queues", "default", "--celery-hostname", "default@%h"],
        "worker-host1": ["celery", "worker", "--queues", "logs-host1", "--celery-hostname", "host1@%h"],
    }
    processes = []
    try:
        for name, argv in commands.items():
            worker_env = {**env, "TOILLESS_TEST_WORKER": name.removeprefix("worker-")}
            with (logs / f"{name}.log").open("wb") as output:
                processes.append(
                    subprocess.Popen(
                        [AIRFLOW, *argv, *(["--skip-serve-logs"] if name.startswith("worker") else [])],
                        env=worker_env,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        wait_for_port(port, timeout=180)
        yield {"base_url": f"http://{HOST}:{port}", "password": password, "logs": logs}
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, 15)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)


def _api(base_url: str, token: str, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(
        method, f"{base_url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30, **kwargs
    )


def test_task_on_a_log_host_queue_runs_on_that_hosts_worker(celery_airflow: dict) -> None:
    base_url = celery_airflow["base_url"]
    token = requests.post(
        f"{base_url}/auth/token", json={"username": "admin", "password": celery_airflow["password"]}, timeout=30
    ).json()["access_token"]

    deadline = time.monotonic() + 180
    while _api(base_url, token, "GET", "/api/v2/dags/celery_queue_probe").status_code != 200:
        assert time.monotonic() < deadline, "probe DAG never parsed"
        time.sleep(1)
    run = _api(base_url, token, "POST", "/api/v2/dags/celery_queue_probe/dagRuns", json={"logical_date": None}).json()
    run_id = run["dag_run_id"]

    deadline = time.monotonic() + 240
    state = None
    while time.monotonic() < deadline:
        state = _api(base_url, token, "GET", f"/api/v2/dags/celery_queue_probe/dagRuns/{run_id}").json()["state"]
        if state in ("success", "failed"):
            break
        time.sleep(2)
    logs = {path.name: path.read_text(errors="replace")[-1500:] for path in celery_airflow["logs"].glob("*.log")}
    assert state == "success", json.dumps(logs, indent=1)

    def ran_on(task_id: str) -> str:
        path = f"/api/v2/dags/celery_queue_probe/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        return _api(base_url, token, "GET", path).json()["value"]

    assert ran_on("report_default_worker") == "default"
    assert ran_on("report_log_host_worker") == "host1"
    instances = _api(base_url, token, "GET", f"/api/v2/dags/celery_queue_probe/dagRuns/{run_id}/taskInstances")
    queues = {ti["task_id"]: ti["queue"] for ti in instances.json()["task_instances"]}
    assert queues == {"report_default_worker": "default", "report_log_host_worker": "logs-host1"}
