from __future__ import annotations

import pytest

from toilless.common.alerting import (
    CODE,
    INFRASTRUCTURE,
    TEST,
    TaskFailure,
    classify_failure,
    failure_message,
    first_line,
    route_failure,
)
from toilless.common.config import read_defaults

SETTINGS = read_defaults("toilless")["failure_alerts"]


def failure(dag_id: str = "log_rotation", error_type: str | None = "ValueError", line: str = "bad", owner="sre"):
    return TaskFailure(
        dag_id=dag_id,
        task_id="rotate_logs",
        run_id="manual__1",
        try_number=3,
        max_tries=3,
        owner=owner,
        error_type=error_type,
        error_first_line=line,
        log_url="http://ui/dags/log_rotation/runs/manual__1/tasks/rotate_logs?try_number=3",
    )


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        pytest.param(failure(dag_id="test.smoke"), TEST, id="test-prefix"),
        pytest.param(failure(dag_id="test.smoke", error_type=None), TEST, id="test-prefix-wins-over-infra"),
        pytest.param(failure(error_type=None, line=first_line(None)), INFRASTRUCTURE, id="no-exception-executor"),
        pytest.param(failure(error_type="PodLaunchFailedException"), INFRASTRUCTURE, id="pod-launch"),
        pytest.param(failure(line="Pod was OOMKilled"), INFRASTRUCTURE, id="oom-in-message"),
        pytest.param(failure(error_type="ZeroDivisionError"), CODE, id="code-error"),
        pytest.param(failure(dag_id="testing_dag"), CODE, id="not-test-prefix"),
    ],
)
def test_classify_failure(item: TaskFailure, expected: str) -> None:
    assert classify_failure(item, SETTINGS) == expected


@pytest.mark.parametrize(
    ("item", "environment", "owner_channels", "channel"),
    [
        pytest.param(failure(dag_id="test.x"), "prod", {}, "non_urgent", id="test-dag-never-pages"),
        pytest.param(failure(), "prod", {}, "urgent", id="prod-code-pages"),
        pytest.param(failure(), "preprod", {}, "non_urgent", id="preprod-code-waits"),
        pytest.param(failure(owner="sre"), "prod", {"sre": "developers"}, "developers", id="owner-channel"),
        pytest.param(failure(error_type=None), "prod", {}, "infrastructure", id="infra-to-infra-owner"),
    ],
)
def test_route_failure(item, environment, owner_channels, channel) -> None:
    settings = {**SETTINGS, "owner_channels": owner_channels}
    assert route_failure(item, settings, environment).channel == channel


def test_first_line_takes_the_first_non_empty_line_and_shortens() -> None:
    assert first_line(RuntimeError("\n  boom  \nmore")) == "boom"
    assert len(first_line(RuntimeError("x" * 1000))) == 300
    assert first_line(KeyError()) == "KeyError"
    assert "executor" in first_line(None)


def test_failure_message_names_everything_an_on_call_needs() -> None:
    item = failure()
    message = failure_message(item, route_failure(item, SETTINGS, "prod"), "prod", {"ui"})
    text = message["text"]
    for expected in ("log_rotation", "rotate_logs", "manual__1", "try 3/3", "bad", item.log_url, "[prod]"):
        assert expected in text
    assert message["blocks"][0]["type"] == "header"
    assert all(len(block.get("text", {}).get("text", "")) <= 3000 for block in message["blocks"])
