"""``make run``'s console: the banner, errors and one line per finished run; moto's access log and Slack messages go to
files under the Airflow home (issue 12, defect 17)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox.console import RunSummaries, run_line
from sandbox.http import LoopbackHTTPServer
from sandbox.service import SandboxContext
from sandbox.services.aws import AwsService
from sandbox.services.slack import SlackService


@pytest.fixture
def restore_werkzeug_logger() -> Iterator[None]:
    logger = logging.getLogger("werkzeug")
    handlers, propagate, level = list(logger.handlers), logger.propagate, logger.level
    yield
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    for handler in handlers:
        logger.addHandler(handler)
    logger.propagate, logger.level = propagate, level


def test_moto_access_log_goes_to_a_file_not_the_console(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], restore_werkzeug_logger: None
) -> None:
    ctx = SandboxContext(home=tmp_path, preferred_ports=False)
    service = AwsService()
    service.start(ctx)
    try:
        assert service.moto is not None
        service.moto.client("sts").get_caller_identity()
    finally:
        service.stop()

    printed = capfd.readouterr()
    assert "HTTP/1.1" not in printed.out + printed.err
    assert "\x1b[" not in printed.out + printed.err
    assert "HTTP/1.1" in (tmp_path / "moto.log").read_text(encoding="utf-8")


def test_slack_messages_are_kept_in_a_file_not_echoed(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    import urllib.request

    ctx = SandboxContext(home=tmp_path, preferred_ports=False)
    service = SlackService()
    service.start(ctx)
    try:
        assert service.sink is not None
        request = urllib.request.Request(
            service.sink.webhook_url("non_urgent"),
            data=json.dumps({"text": "runbook report"}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(request, timeout=5).close()
    finally:
        service.stop()

    printed = capfd.readouterr()
    assert "runbook report" not in printed.out + printed.err
    assert "runbook report" in (tmp_path / "slack.jsonl").read_text(encoding="utf-8")


def _run(dag_id: str, run_id: str, state: str, seconds: float = 12.0) -> dict[str, Any]:
    start = datetime.now(UTC) - timedelta(minutes=1)
    return {
        "dag_id": dag_id,
        "dag_run_id": run_id,
        "state": state,
        "start_date": start.isoformat(),
        "end_date": (start + timedelta(seconds=seconds)).isoformat(),
    }


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        pytest.param(
            _run("log_rotation", "manual__1", "success"),
            "[run] log_rotation: success in 12 s  manual__1  http://ui/dags/log_rotation/runs/manual__1",
            id="success",
        ),
        pytest.param(
            _run("rds_storage_guard", "alert__x", "failed", 3.4),
            "[run] rds_storage_guard: FAILED in 3 s  alert__x  http://ui/dags/rds_storage_guard/runs/alert__x",
            id="failed-stands-out",
        ),
        pytest.param(
            {**_run("d", "evil\x1b[31m\nsecond line", "success"), "start_date": None},
            "[run] d: success  evil [31m second line  http://ui/dags/d/runs/evil%1B%5B31m%0Asecond%20line",
            id="control-characters-never-reach-the-terminal",
        ),
    ],
)
def test_one_line_per_run(run: dict[str, Any], expected: str) -> None:
    assert run_line(run, "http://ui") == expected


class _FakeAirflow(LoopbackHTTPServer):
    def __init__(self) -> None:
        super().__init__(0)
        self.runs: list[dict[str, Any]] = []
        self.queries: list[str] = []

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> Any:
        if path == "/auth/token":
            assert json.loads(body) == {"username": "admin", "password": "pw"}
            return 201, [("Content-Type", "application/json")], b'{"access_token": "t"}'
        assert headers.get("Authorization") == "Bearer t"
        self.queries.append(path)
        return 200, [("Content-Type", "application/json")], json.dumps({"dag_runs": self.runs}).encode()


def test_run_summaries_print_each_finished_run_once() -> None:
    printed: list[str] = []
    with _FakeAirflow() as airflow:
        summaries = RunSummaries(airflow.url, "admin", "pw", out=printed.append)
        airflow.runs = [_run("log_rotation", "r1", "success")]
        assert summaries.poll_once() == 1
        airflow.runs = [_run("log_rotation", "r1", "success"), _run("aws_cost_review", "r2", "failed")]
        assert summaries.poll_once() == 1
        assert summaries.poll_once() == 0

    assert [line.split("  ")[0] for line in printed] == [
        "[run] log_rotation: success in 12 s",
        "[run] aws_cost_review: FAILED in 12 s",
    ]
    assert "state=success&state=failed" in airflow.queries[0]
    assert "end_date_gte=" in airflow.queries[0]
