"""toilless.hooks.postgres_admin on a real server: it ends or cancels only the very session that was read."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

from tests.sops.postgres_connections.conftest import CONN_ID, PgEnv
from toilless.hooks.postgres_admin import PostgresAdminHook

pytestmark = pytest.mark.integration


def _row(hook: PostgresAdminHook, pid: int) -> dict[str, Any]:
    [row] = hook.records(
        "SELECT pid, backend_start, state, state_change, query_start FROM pg_stat_activity WHERE pid = %(pid)s",
        {"pid": pid},
    )
    return row


def test_terminate_only_the_session_that_was_read(pg_env: PgEnv) -> None:
    [pid] = pg_env.storm.open(1, application=pg_env.app, mode="idle_in_transaction")
    hook = PostgresAdminHook(postgres_conn_id=CONN_ID)
    try:
        read = _row(hook, pid)
        recycled = {**read, "backend_start": read["backend_start"] - timedelta(seconds=1)}
        assert not hook.terminate_backend(
            **{key: recycled[key] for key in ("pid", "backend_start", "state", "state_change")}
        )
        # The session does work after it was read: it is not the idle transaction that was judged any more.
        connection = pg_env.storm.connections[-1]
        time.sleep(0.01)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 2")
        assert not hook.terminate_backend(
            **{key: read[key] for key in ("pid", "backend_start", "state", "state_change")}
        )
        assert pg_env.storm.alive([pid]) == {pid}
        fresh = _row(hook, pid)
        assert hook.terminate_backend(**{key: fresh[key] for key in ("pid", "backend_start", "state", "state_change")})
        time.sleep(0.2)
        assert pg_env.storm.alive([pid]) == set()
        # Never itself, and resuming replay on a primary does nothing.
        own = _row(hook, hook.own_pid())
        assert not hook.terminate_backend(
            **{key: own[key] for key in ("pid", "backend_start", "state", "state_change")}
        )
        assert hook.resume_wal_replay() is False
    finally:
        hook.close()


def test_cancel_only_the_query_that_was_read(pg_env: PgEnv) -> None:
    [pid] = pg_env.storm.open(1, application=pg_env.app, mode="active", sleep_seconds=30)
    time.sleep(0.3)
    hook = PostgresAdminHook(postgres_conn_id=CONN_ID)
    try:
        read = _row(hook, pid)
        other_query = read["query_start"] - timedelta(seconds=1)
        assert not hook.cancel_backend(pid=pid, backend_start=read["backend_start"], query_start=other_query)
        assert _row(hook, pid)["state"] == "active"
        assert hook.cancel_backend(pid=pid, backend_start=read["backend_start"], query_start=read["query_start"])
    finally:
        hook.close()


@pytest.mark.parametrize("name", ["postgres_connections", "", "toilless name with spaces", "toilless" + "x" * 70])
def test_the_hook_always_names_its_own_sessions_toilless(name: str) -> None:
    with pytest.raises(ValueError, match="must start with 'toilless'"):
        PostgresAdminHook(postgres_conn_id=CONN_ID, application_name=name)
