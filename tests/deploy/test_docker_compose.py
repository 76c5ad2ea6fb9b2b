"""The distributed deployment's files are consistent (no Docker engine runs here, so they are validated, not run)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yaml"
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server --apps core",
    "airflow-execution-api": "api-server --apps execution",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def test_docker_compose_validates_with_the_compose_tool() -> None:
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose (Debian package) is installed by `make test`"
    result = subprocess.run(
        [tool, "-f", str(COMPOSE), "config", "--quiet"], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert result.returncode == 0, result.stderr


def test_the_official_airflow_3_services_are_there(compose: dict) -> None:
    services = compose["services"]
    assert {"postgres", "redis", "airflow-init", *AIRFLOW_SERVICES} <= set(services)
    for name, command in AIRFLOW_SERVICES.items():
        assert services[name]["command"] == command, name


def test_celery_executor_on_postgres_and_redis(compose: dict) -> None:
    env = compose["services"]["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-execution-api:8080/execution/"


def test_repo_folders_are_mounted_into_every_airflow_service(compose: dict) -> None:
    for name, service in compose["services"].items():
        if not name.startswith("airflow-"):
            continue
        mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in service["volumes"]}
        for folder in ("dags", "plugins", "include"):
            assert mounts.get(f"/opt/airflow/{folder}") == f"./{folder}", (name, folder)
            assert (REPO / folder).is_dir()


def test_named_volumes_are_declared_and_dependencies_exist(compose: dict) -> None:
    declared = set(compose.get("volumes") or {})
    services = set(compose["services"])
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/", "$")):
                assert source in declared, (name, source)
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)


def test_images_are_pinned_and_the_airflow_image_matches_the_lock(compose: dict) -> None:
    for name, service in compose["services"].items():
        image = service.get("image", "")
        assert ":" in image, name
        assert not image.endswith(":latest"), name
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    base = re.search(r"^FROM apache/airflow:(\S+)", dockerfile, re.MULTILINE)
    assert base, "Dockerfile must build FROM apache/airflow:<version>"
    locked = re.search(r"^apache-airflow==(\S+)$", (REPO / "requirements.txt").read_text(), re.MULTILINE)
    assert locked
    assert base.group(1).split("-")[0] == locked.group(1) == "3.3.2"
    assert "requirements.txt" in dockerfile


def test_ports_bind_to_loopback(compose: dict) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_log_host_worker_listens_on_its_own_queue(compose: dict) -> None:
    workers = {name: s for name, s in compose["services"].items() if "--queues" in str(s.get("command", ""))}
    assert workers, "a per-host log worker example exists"
    for name, service in workers.items():
        queue = service["command"].split("--queues", 1)[1].split()[0]
        assert name.endswith(queue.removeprefix("logs-")) or queue in name, (name, queue)


def test_tasks_call_an_execution_api_server_of_their_own(compose: dict) -> None:
    # The webhook's API server (--apps core) shares its process with the UI and REST API only; the workers wait for
    # the Execution API they call (issue 12: the storm's p99 while its runs execute).
    services = compose["services"]
    assert "ports" not in services["airflow-execution-api"]
    for name in ("airflow-worker", "airflow-worker-logs-host1"):
        assert "airflow-execution-api" in services[name]["depends_on"], name
