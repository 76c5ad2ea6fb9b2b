"""redis_memory end to end (dag.test) on a real Redis filled by the test, reporting to the Slack sink."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from sandbox.redis_server import RedisServer
from sandbox.slack_sink import SlackSink
from tests.sops.redis_memory import keyspace

pytestmark = pytest.mark.integration

DAG_ID = "redis_memory"
CHANNEL = "non_urgent"
ALWAYS = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00", "end": "23:59"}
#: Acting settings: cleanup of session: keys idle for a day, every run (no pressure needed), outside any window.
ACTING = {
    "dry_run": False,
    "respect_maintenance_window": False,
    "eviction_sample_seconds": 0.2,
    "cleanup": {"prefixes": keyspace.CONFIGURED, "idle_seconds": keyspace.DAY, "when": "always", "batch_size": 25},
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
        settings["cleanup"] = {**ACTING["cleanup"], **overrides.get("cleanup", {})}
        set_variable(f"toilless_{DAG_ID}", settings)

    return _configure


def report(sink: SlackSink) -> str:
    [message] = sink.messages(CHANNEL)
    return message["text"]


def test_expire_sets_a_ttl_only_on_idle_keys_without_ttl_under_the_prefix(
    run_dag: Callable[..., Any], slack_sink: SlackSink, redis_server: RedisServer, configure: Callable[..., None]
) -> None:
    configure()
    client = redis_server.client()
    keyspace.fill(client)
    outside_before = keyspace.digest(client, outside=keyspace.CONFIGURED)
    untouched_under_prefix = [f"session:fresh:{i}".encode() for i in range(15)] + [
        f"session:ttl:{i}".encode() for i in range(15)
    ]
    ttl_before = {key: client.pttl(key) > 0 for key in untouched_under_prefix}

    assert run_dag(DAG_ID).state == "success"

    expiring = {key for key in client.scan_iter(match=b"session:*") if client.pttl(key) > 0}
    assert keyspace.candidates() <= expiring
    assert {key: client.pttl(key) > 0 for key in untouched_under_prefix} == ttl_before
    assert keyspace.digest(client, outside=keyspace.CONFIGURED) == outside_before
    text = report(slack_sink)
    assert "session:: set a TTL on 120 of 120 candidates" in text
    assert "memory before/after" in text
    assert "total this run: 120 of at most 1,000" in text


@pytest.mark.parametrize(
    ("overrides", "conf", "expected"),
    [
        pytest.param({"dry_run": True}, {}, "dry run: would", id="dry-run-by-config"),
        pytest.param(
            {"respect_maintenance_window": True, "maintenance_window": ALWAYS},
            {},
            "maintenance window",
            id="maintenance-window",
        ),
    ],
)
def test_nothing_changes_in_dry_run_or_the_maintenance_window(
    run_dag: Callable[..., Any],
    slack_sink: SlackSink,
    redis_server: RedisServer,
    configure: Callable[..., None],
    overrides: dict[str, Any],
    conf: dict[str, Any],
    expected: str,
) -> None:
    configure(**overrides)
    client = redis_server.client()
    keyspace.fill(client)
    before = keyspace.digest(client)

    assert run_dag(DAG_ID, run_conf=conf).state == "success"

    assert keyspace.digest(client) == before
    text = report(slack_sink)
    assert expected in text
    assert "set a TTL on 0 of 120 candidates" in text


def test_a_connection_that_is_not_redis_fails_the_first_task_and_changes_nothing(
    run_dag: Callable[..., Any],
    slack_sink: SlackSink,
    redis_server: RedisServer,
    configure: Callable[..., None],
    set_connection: Callable[[str, dict[str, Any]], None],
) -> None:
    configure(redis_conn_id="not_redis")
    set_connection("not_redis", {"conn_type": "postgres", "host": "127.0.0.1", "port": redis_server.port})
    client = redis_server.client()
    keyspace.fill(client)
    before = keyspace.digest(client)

    run = run_dag(DAG_ID)

    assert run.state == "failed"
    first = next(ti for ti in run.get_task_instances() if ti.task_id == "resolve_settings")
    assert first.try_number == 1  # bad input: failed at once, never retried
    assert keyspace.digest(client) == before
    texts = [message["text"] for message in slack_sink.messages()]
    assert any("resolve_settings" in text for text in texts)
    assert any(
        "is of type &#x27;postgres&#x27;, not &#x27;redis&#x27;" in text or "not 'redis'" in text for text in texts
    )
    assert not [text for text in texts if text.startswith(":") and "Redis memory" in text]
