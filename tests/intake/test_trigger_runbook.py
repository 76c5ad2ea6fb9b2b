"""``scripts/trigger_runbook.py`` against a busy Airflow: a 5xx or a lost answer is repeated, safely (issue 10 e2e:
the live REST API did not answer within 30 s while runbooks ran on SQLite)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from sandbox.http import LoopbackHTTPServer

ARGV = [
    "--user",
    "admin",
    "--dag",
    "alert_intake_selftest",
    "--alertname",
    "ToillessIntakeSelfTest",
    "--fingerprint",
    "feedfacecafe0001",
    "--starts-at",
    "2026-11-22T03:30:00Z",
]


class _BusyAirflow(LoopbackHTTPServer):
    """Answers the trigger as a write-contended Airflow does: first as told by ``first``, then normally."""

    def __init__(self, first: str) -> None:
        super().__init__(0)
        self.first = first
        self.triggers = 0
        self.runs: set[str] = set()
        self._lock = threading.Lock()

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> Any:
        if path == "/auth/token":
            return 201, [("Content-Type", "application/json")], b'{"access_token": "t"}'
        with self._lock:
            self.triggers += 1
            number = self.triggers
            run_id = json.loads(body)["dag_run_id"]
            exists = run_id in self.runs
            self.runs.add(run_id)
        if number == 1 and self.first == "locked":
            self.runs.discard(run_id)
            return 500, [("Content-Type", "application/json")], b'{"detail": "Database error"}'
        if number == 1 and self.first == "slow":
            time.sleep(1.0)  # the run is created, but the answer comes after the client gave up
        if exists:
            return 409, [("Content-Type", "application/json")], b'{"detail": "exists"}'
        return 200, [("Content-Type", "application/json")], json.dumps({"dag_run_id": run_id}).encode()


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    from scripts import trigger_runbook

    monkeypatch.setattr(trigger_runbook, "TIMEOUT_SECONDS", 0.3)
    monkeypatch.setattr(trigger_runbook, "PAUSE_SECONDS", 0.01)
    monkeypatch.setenv("AIRFLOW_PASSWORD", "pw")


def test_a_database_error_is_repeated_and_the_run_starts_once(
    quick_retries: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from scripts.trigger_runbook import main

    with _BusyAirflow("locked") as airflow:
        assert main(["--url", airflow.url, *ARGV]) == 0

    assert airflow.triggers == 2
    assert len(airflow.runs) == 1
    assert "started alert_intake_selftest run" in capsys.readouterr().out


def test_a_lost_answer_is_repeated_and_reported_as_possibly_ours(
    quick_retries: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from scripts.trigger_runbook import main

    with _BusyAirflow("slow") as airflow:
        assert main(["--url", airflow.url, *ARGV]) == 3

    assert len(airflow.runs) == 1  # never a second run
    assert "may have started it" in capsys.readouterr().out
