"""The intake's worker as its own process (issue 12, "The storm under real load"): the API server only validates and
inserts; ``python -m toilless.intake.worker`` decides. It starts with ``make run`` (and the deployment), drains what
was accepted, stops cleanly on SIGTERM, survives being killed, and two of them never decide one delivery twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.alert_intake import REPO, TEST_ROUTES, IntakeHarness, make_alert, make_payload

pytestmark = pytest.mark.integration


def _group(targets: range, *, fingerprint_base: int = 0) -> dict[str, Any]:
    """One delivery: a firing alert per target (fingerprints derived from the target: repeats are duplicates)."""
    return make_payload(
        *(
            make_alert(fingerprint=f"{fingerprint_base + n:016x}", instance=f"db-{n}", environment="staging")
            for n in targets
        )
    )


def _wait(condition: Callable[[], bool], timeout: float = 90.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


class _Workers:
    """Worker processes started by a test; every one still running is killed at the end."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, mode: str = "process") -> subprocess.Popen[bytes]:
        env = dict(os.environ)  # this session's AIRFLOW_HOME (metadata DB) and the test's Connections
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "plugins"), str(REPO)])
        # The test routes (the fixture DAG), through the Variable that overrides alert_intake.yaml.
        # The test DB is SQLite, where `worker: auto` leaves decisions to the API server: ask for the process.
        env["AIRFLOW_VAR_TOILLESS_ALERT_INTAKE"] = json.dumps({"routes_file": str(TEST_ROUTES), "worker": mode})
        log = (self.log_dir / f"worker-{len(self.started)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "toilless.intake.worker", "--poll-seconds", "0.2"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
        )
        self.started.append(process)
        return process

    def log(self, index: int) -> str:
        return (self.log_dir / f"worker-{index}.log").read_text(errors="replace")

    def kill_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.wait(10)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[_Workers]:
    started = _Workers(tmp_path)
    try:
        yield started
    finally:
        started.kill_all()


def _decided(intake: IntakeHarness, deliveries: list[int]) -> list[dict[str, Any]]:
    return [intake.service.delivery(delivery) for delivery in deliveries]


def _all_done(intake: IntakeHarness, deliveries: list[int]) -> bool:
    return all(answer is not None and answer["status"] == "done" for answer in _decided(intake, deliveries))


def _statuses(intake: IntakeHarness, deliveries: list[int]) -> list[str]:
    return [result["status"] for answer in _decided(intake, deliveries) for result in answer["results"]]


def _ledger_rows() -> list[Any]:
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from toilless.intake.store import ledger

    with create_session() as session:
        return list(session.execute(select(ledger.c.alert_key, ledger.c.decision)).all())


def test_make_run_starts_the_intake_worker_process_with_airflow() -> None:
    from sandbox.airflow_group import component_commands, component_environment

    commands = component_commands()
    assert commands["intake-worker"] == [sys.executable, "-m", "toilless.intake.worker"]
    assert {"scheduler", "dag-processor", "triggerer", "api-server"} <= set(commands)
    env = component_environment({"AIRFLOW__CORE__PLUGINS_FOLDER": "/repo/plugins", "PYTHONPATH": "/extra"})
    assert env["PYTHONPATH"].split(os.pathsep) == ["/repo/plugins", "/extra"]


def test_the_compose_deployment_runs_the_intake_worker() -> None:
    import yaml

    services = yaml.safe_load((REPO / "docker-compose.yaml").read_text())["services"]
    worker = services["airflow-intake-worker"]
    assert worker["command"] == "python -m toilless.intake.worker"
    assert worker["environment"]["PYTHONPATH"] == "/opt/airflow/plugins"


def test_the_worker_process_starts_drains_the_inbox_and_stops_cleanly_on_sigterm(
    intake: IntakeHarness, workers: _Workers
) -> None:
    # Accepted before any worker runs (an API server without one, or a worker down): nothing is decided yet.
    answers = [intake.post(_group(range(n * 3, n * 3 + 3))) for n in range(4)]
    assert [answer.status_code for answer in answers] == [200] * 4
    deliveries = [answer.json()["delivery"] for answer in answers]
    assert intake.runs() == []

    process = workers.start()
    assert _wait(lambda: _all_done(intake, deliveries)), workers.log(0)
    assert _wait(lambda: intake.outbox_size() == 0), workers.log(0)
    assert _statuses(intake, deliveries) == ["started"] * 12
    assert len(intake.runs()) == 12
    assert sum("runbook started" in message["text"] for message in intake.slack_sink.messages()) == 12

    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0, workers.log(0)
    assert "Alert intake worker stopped" in workers.log(0)


def test_a_worker_process_killed_mid_drain_and_started_again_decides_everything_once(
    intake: IntakeHarness, workers: _Workers
) -> None:
    # 30 deliveries of 4 alerts over 20 targets: every target's alert arrives in two deliveries (repeats).
    bodies = [_group(range(n % 10 * 2, n % 10 * 2 + 4)) for n in range(30)]
    deliveries = [intake.post(body).json()["delivery"] for body in bodies]

    first = workers.start()
    assert _wait(lambda: any(answer["status"] == "done" for answer in _decided(intake, deliveries))), workers.log(0)
    first.kill()  # SIGKILL: no clean stop, possibly inside a decision transaction
    first.wait(10)
    workers.start()
    assert _wait(lambda: _all_done(intake, deliveries)), workers.log(1)

    statuses = _statuses(intake, deliveries)
    assert len(statuses) == 120
    targets = {alert["labels"]["instance"] for body in bodies for alert in body["alerts"]}
    assert len(targets) == 22  # db-0 .. db-21
    assert statuses.count("started") == len(targets), statuses
    assert set(statuses) == {"started", "duplicate"}
    assert sorted(run[0].split("__")[2] for run in intake.runs()) == sorted(f"instance-{t}" for t in targets)
    assert len(_ledger_rows()) == len(targets)


def test_two_worker_processes_never_decide_one_delivery_twice(intake: IntakeHarness, workers: _Workers) -> None:
    # Alertmanager HA: every delivery twice (two replicas), 25 targets in deliveries of 5, plus overlapping groups.
    bodies = [_group(range(n * 5, n * 5 + 5)) for n in range(5)] * 2 + [
        _group(range(n, n + 5)) for n in range(0, 21, 4)
    ]
    deliveries = [intake.post(body).json()["delivery"] for body in bodies]
    first, second = workers.start(), workers.start()
    assert _wait(lambda: _all_done(intake, deliveries), timeout=120), workers.log(0) + workers.log(1)
    assert _wait(lambda: intake.outbox_size() == 0), workers.log(0) + workers.log(1)

    decided = _decided(intake, deliveries)
    # Each delivery decided once: one result per alert it carried (a second decision would have been refused by
    # the done mark's compare-and-swap and rolled back with its decisions).
    assert [len(answer["results"]) for answer in decided] == [len(body["alerts"]) for body in bodies]
    statuses = _statuses(intake, deliveries)
    assert statuses.count("started") == 25, statuses
    assert set(statuses) == {"started", "duplicate"}
    assert len(intake.runs()) == 25
    assert len(_ledger_rows()) == 25
    started_acks = [m for m in intake.slack_sink.messages() if "runbook started" in m["text"]]
    assert len(started_acks) == 25
    for process in (first, second):
        process.send_signal(signal.SIGTERM)
    assert [first.wait(30), second.wait(30)] == [0, 0]


def test_on_sqlite_the_worker_process_stays_idle_by_default_and_the_api_server_decides(
    intake: IntakeHarness, workers: _Workers
) -> None:
    """``worker: auto`` on SQLite (one writer): a worker process started anyway (make run starts it) decides nothing,
    stays up (its supervisor would restart it in a loop otherwise) and stops cleanly."""
    delivery = intake.post(_group(range(2))).json()["delivery"]
    process = workers.start(mode="auto")
    assert _wait(lambda: "this process stays idle" in workers.log(0), timeout=60), workers.log(0)
    time.sleep(1.0)
    assert process.poll() is None
    assert intake.service.delivery(delivery)["status"] == "pending"
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0


@pytest.mark.parametrize(("mode", "runs_in_api_server"), [("process", False), ("api_server", True), ("auto", True)])
def test_the_api_server_runs_a_worker_only_when_configured(
    intake_dags: Path,
    slack_sink: Any,
    set_connection: Callable[[str, dict[str, Any]], None],
    set_variable: Callable[[str, Any], None],
    mode: str,
    runs_in_api_server: bool,
) -> None:
    """``worker: process``: decisions by the worker process, none in the API server. ``worker: api_server`` (and
    ``auto`` on SQLite, this session's DB): a thread started with the app (not on the first POST), which decides
    what is accepted and stops with the app."""
    from airflow.api_fastapi.app import lifespan as airflow_lifespan
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from tests.fixtures.alert_intake import INTAKE_TOKEN, clear_intake_state
    from toilless.intake.app import create_app
    from toilless.intake.service import IntakeService, SettingsProvider

    set_connection("toilless_alert_intake", {"conn_type": "generic", "login": "alertmanager", "password": INTAKE_TOKEN})
    set_variable("toilless_alert_intake", {"worker": mode})
    clear_intake_state()
    service = IntakeService(SettingsProvider(ttl=0, routes_path=TEST_ROUTES))
    server = FastAPI(lifespan=airflow_lifespan)
    server.mount("/toilless", create_app(service))
    try:
        with TestClient(server) as client:
            answer = client.post(
                "/toilless/alertmanager",
                content=json.dumps(_group(range(2))),
                headers={"Authorization": f"Bearer {INTAKE_TOKEN}", "Content-Type": "application/json"},
            )
            assert answer.status_code == 200, answer.text
            delivery = answer.json()["delivery"]
            threads = [thread.name for thread in threading.enumerate()]
            assert ("toilless-intake-worker" in threads) is runs_in_api_server
            if runs_in_api_server:
                assert _wait(lambda: service.delivery(delivery)["status"] == "done", timeout=30)
            else:
                time.sleep(1.0)
                assert service.delivery(delivery)["status"] == "pending"  # left to the worker process
        assert "toilless-intake-worker" not in [thread.name for thread in threading.enumerate()]
    finally:
        clear_intake_state()


@pytest.mark.parametrize(
    ("setting", "dialect", "expected"),
    [
        pytest.param({}, "postgresql", "process", id="auto-on-postgresql"),
        pytest.param({}, "sqlite", "api_server", id="auto-on-sqlite"),
        pytest.param({"worker": "process"}, "sqlite", "process", id="explicit-process"),
        pytest.param({"worker": "api_server"}, "postgresql", "api_server", id="explicit-api-server"),
    ],
)
def test_worker_mode_auto_follows_the_metadata_db(
    monkeypatch: pytest.MonkeyPatch, setting: dict[str, str], dialect: str, expected: str
) -> None:
    from types import SimpleNamespace

    from airflow import settings

    from toilless.intake.worker import resolve_mode

    monkeypatch.setattr(settings, "engine", SimpleNamespace(dialect=SimpleNamespace(name=dialect)))
    assert resolve_mode(setting) == expected
