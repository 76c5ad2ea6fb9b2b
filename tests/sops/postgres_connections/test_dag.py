"""postgres_connections end to end on a real PostgreSQL server with real connection storms made by the test.

Each test has an application name of its own on the allow-list, so sessions of other tests are never candidates.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from sandbox.postgres_connections_data import APP_ROLE, REPLICATION_ROLE
from sandbox.slack_sink import SlackSink
from tests.sops.postgres_connections.conftest import PgEnv

pytestmark = pytest.mark.integration

DAG_ID = "postgres_connections"
CHANNEL = "infrastructure"


def _report(sink: SlackSink) -> str:
    [message] = sink.messages(CHANNEL)
    return message["text"]


def _task_states(run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def test_storm_ends_only_allow_listed_idle_in_transaction_sessions_up_to_the_cap(
    run_dag: Callable[..., Any], slack_sink: SlackSink, pg_env: PgEnv
) -> None:
    env = pg_env
    env.configure(max_terminations_per_run=3, pools={env.app: 4})
    storm = env.storm
    eligible = storm.open(5, application=env.app, mode="idle_in_transaction")
    idle = storm.open(3, application=env.app, mode="idle")  # end_idle is off
    foreign = storm.open(3, application=f"{env.app}_other", mode="idle_in_transaction")  # not on the allow-list
    superusers = storm.open(2, application=env.app, user="postgres", mode="idle_in_transaction")
    replication_role = storm.open(1, application=env.app, user=REPLICATION_ROLE, mode="idle_in_transaction")
    walsenders = storm.open(2, application=env.app, user=REPLICATION_ROLE, mode="replication")
    time.sleep(0.8)

    run = run_dag(DAG_ID)

    assert str(run.state) == "success", _task_states(run)
    alive = storm.alive()
    ended = set(storm.pids) - alive
    assert len(ended) == 3
    assert ended <= set(eligible)
    for kept in (idle, foreign, superusers, replication_role, walsenders):
        assert set(kept) <= alive
    text = _report(slack_sink)
    assert "client sessions of" in text
    assert "By application" in text
    assert env.app in text
    assert text.count("Ended pid") == 3
    assert "2 more eligible session(s) left alone: at most 3 are ended per run" in text
    assert "Not ended: 2 session(s) of superusers" in text
    assert "Not ended: 1 session(s) of roles with REPLICATION" in text
    assert "Not ended: 3 session(s) of applications not on the allow-list" in text
    assert f"Pool `{env.app}`" in text
    assert "more than its pool of 4" in text


def test_bad_input_fails_at_once_and_changes_nothing(
    run_dag: Callable[..., Any], slack_sink: SlackSink, pg_env: PgEnv
) -> None:
    pg_env.configure(idle_in_transaction_seconds=0)
    pids = pg_env.storm.open(2, application=pg_env.app, mode="idle_in_transaction")
    time.sleep(0.8)
    run = run_dag(DAG_ID)
    assert str(run.state) == "failed"
    states = _task_states(run)
    assert states["resolve_settings"] == "failed"
    assert states["end_idle_sessions"] == "upstream_failed"
    assert pg_env.storm.alive(pids) == set(pids)
    failures = [message["text"] for message in slack_sink.messages()]
    assert any("idle_in_transaction_seconds must be above 0" in text for text in failures), failures


def test_long_queries_and_blocking_chains_are_reported(
    run_dag: Callable[..., Any], slack_sink: SlackSink, pg_env: PgEnv
) -> None:
    env = pg_env
    env.configure(allowed_applications=[])
    table = f"lock_{env.app}"
    setup = env.server.connect("postgres")
    setup.autocommit = True
    with setup.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {table} (id int, secret text)")
        cursor.execute(f"INSERT INTO {table} VALUES (1, 'x')")  # noqa: S608 - the table name is the test's own
        cursor.execute(f"GRANT ALL ON {table} TO {APP_ROLE}")
    holder = env.storm.open(1, application=f"{env.app}_holder")[0]
    holder_connection = env.storm.connections[-1]
    holder_connection.autocommit = False
    with holder_connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET secret = 'hunter2-password' WHERE id = 1")  # noqa: S608 - the table name is the test's own
    waiters = []
    for _ in range(2):
        waiter = env.storm.open(1, application=f"{env.app}_waiter")[0]
        connection = env.storm.connections[-1]
        waiters.append(waiter)
        threading.Thread(
            target=_quietly,
            args=(connection, f"UPDATE {table} SET secret = 'card 4111111111111111' WHERE id = 1"),  # noqa: S608 - the table name is the test's own
            daemon=True,
        ).start()
    env.storm.open(1, application=f"{env.app}_slow", mode="active", sleep_seconds=30)
    time.sleep(1.0)
    try:
        run = run_dag(DAG_ID)
    finally:
        holder_connection.rollback()
        with setup.cursor() as cursor:
            cursor.execute(f"DROP TABLE {table}")
        setup.close()
    assert str(run.state) == "success"
    text = _report(slack_sink)
    assert f"Blocking: pid {holder}" in text
    # The second waiter queues behind the first (tuple lock): a chain of depth 2.
    assert "holds up 2 session(s), chain depth 2" in text
    assert "Long-running queries over 0.5 s" in text
    assert "pg_sleep(?)" in text
    assert "Ending sessions: no application is on the allow-list" in text
    # Literals never leave the database.
    assert "hunter2" not in text
    assert "4111111111111111" not in text


def _quietly(connection: Any, sql: str) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    except Exception:
        pass
