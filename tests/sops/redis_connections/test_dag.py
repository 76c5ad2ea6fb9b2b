"""redis_connections end to end (dag.test) on a real Redis with real client connections made by the test."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from sandbox.redis_server import RedisServer
from sandbox.slack_sink import SlackSink
from tests.sops.redis_connections.crowd import Crowd

pytestmark = pytest.mark.integration

DAG_ID = "redis_connections"
CHANNEL = "non_urgent"
ALWAYS = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00", "end": "23:59"}
ACTING = {
    "dry_run": False,
    "respect_maintenance_window": False,
    "sample_seconds": 0.2,
    "kill": {"client_names": ["billing-worker"], "idle_seconds": 1, "when": "always"},
    "pools": {"billing-worker": 4, "api": 20},
}


@pytest.fixture
def configure(
    set_variable: Callable[[str, Any], None],
    set_connection: Callable[[str, dict[str, Any]], None],
    redis_server: RedisServer,
) -> Callable[..., None]:
    """The SOP's settings for this test, on a Connection of its own (run state is kept per Redis target)."""

    def _configure(**overrides: Any) -> None:
        conn_id = f"redis_{uuid.uuid4().hex[:8]}"
        set_connection(conn_id, redis_server.airflow_connection())
        settings = {**ACTING, "redis_conn_id": conn_id, **overrides}
        settings["kill"] = {**ACTING["kill"], **overrides.get("kill", {})}
        set_variable(f"toilless_{DAG_ID}", settings)

    return _configure


def populate(crowd: Crowd) -> dict[str, list[int]]:
    opened = {
        "billing-worker": crowd.open("billing-worker", 8),
        "api": crowd.open("api", 5),
        "": crowd.open("", 3),
    }
    crowd.subscriber("billing-worker")  # idle by design: never ended
    crowd.wait_idle(1.2)
    return opened


def report(sink: SlackSink) -> str:
    [message] = sink.messages(CHANNEL)
    return message["text"]


def test_ends_idle_connections_of_configured_names_only(
    run_dag: Callable[..., Any], slack_sink: SlackSink, crowd: Crowd, configure: Callable[..., None]
) -> None:
    configure()
    opened = populate(crowd)

    assert run_dag(DAG_ID).state == "success"

    after = crowd.listed()
    assert not set(opened["billing-worker"]) & set(after)
    assert set(opened["api"]) | set(opened[""]) <= set(after)
    assert list(after.values()).count("billing-worker") == 1  # the subscriber
    text = report(slack_sink)
    assert "ended 8 of 8 idle connection(s)" in text
    assert "by client name: billing-worker 9, api 5" in text
    assert "billing-worker: 9 connections, more than its pool of 4" in text


@pytest.mark.parametrize(
    ("overrides", "conf", "expected"),
    [
        pytest.param({"dry_run": True}, {}, "dry run: would end idle connections", id="dry-run-by-config"),
        pytest.param({}, {"dry_run": True}, "dry run: would end idle connections", id="dry-run-param"),
        pytest.param(
            {"respect_maintenance_window": True, "maintenance_window": ALWAYS},
            {},
            "maintenance window",
            id="maintenance-window",
        ),
    ],
)
def test_nothing_is_ended_in_dry_run_or_the_maintenance_window(
    run_dag: Callable[..., Any],
    slack_sink: SlackSink,
    crowd: Crowd,
    configure: Callable[..., None],
    overrides: dict[str, Any],
    conf: dict[str, Any],
    expected: str,
) -> None:
    configure(**overrides)
    opened = populate(crowd)
    ours = {client_id for ids in opened.values() for client_id in ids}

    assert run_dag(DAG_ID, run_conf=conf).state == "success"

    assert ours <= set(crowd.listed())
    text = report(slack_sink)
    assert expected in text
    assert "ended 0 of 8 idle connection(s)" in text
