"""Real replica lag on a primary + streaming replica pair, for the postgres_replica_lag tests and sandbox.

- :func:`pause_replay`: ``pg_wal_replay_pause()`` on the replica, then writes on the primary: replay falls behind.
- :func:`hold_replay`: a long query on the replica reads a table; the primary then takes an ACCESS EXCLUSIVE lock on
  it (TRUNCATE). With ``hot_standby_feedback=off`` and ``max_standby_streaming_delay=-1`` replay waits for the query.
"""

from __future__ import annotations

import time
from typing import Any

from sandbox.postgres import PostgresServer
from sandbox.postgres_connections_data import wait_ready


def _execute(server: PostgresServer, *statements: str) -> None:
    connection = server.connect("postgres")
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            # The test servers run with synchronous_commit=off: flush each commit, so the flushed WAL position (what
            # the replica can have) includes it.
            cursor.execute("SET synchronous_commit = on")
            for statement in statements:
                cursor.execute(statement)
    finally:
        connection.close()


def write_on_primary(primary: PostgresServer, table: str, rows: int = 100) -> None:
    _execute(
        primary,
        f"CREATE TABLE IF NOT EXISTS {table} (id int, payload text)",
        f"INSERT INTO {table} SELECT g, md5(g::text) FROM generate_series(1, {int(rows)}) g",  # noqa: S608
    )


def pause_replay(primary: PostgresServer, replica: PostgresServer, table: str) -> None:
    """Replay paused on the replica, and WAL it has not replayed (a commit on the primary after the pause)."""
    write_on_primary(primary, table)
    wait_replayed(primary.dsn("postgres"), replica.dsn("postgres"))
    _execute(replica, "SELECT pg_wal_replay_pause()")
    write_on_primary(primary, table)


def hold_replay(
    primary: PostgresServer,
    replica: PostgresServer,
    table: str,
    *,
    sleep_seconds: float = 300,
    application: str = "report_runner",
    queries: int = 1,
) -> list[Any]:
    """Long queries on the replica reading ``table``, then TRUNCATE on the primary: replay waits for them.

    Returns the replica connections running the queries (sent, not awaited); close them to let replay go on.
    """
    import psycopg2

    write_on_primary(primary, table)
    wait_replayed(primary.dsn("postgres"), replica.dsn("postgres"))
    connections = []
    for _ in range(queries):
        connection = psycopg2.connect(**replica.dsn("postgres"), application_name=application, async_=1)
        wait_ready(connection)
        connection.cursor().execute(f"SELECT count(*) FROM {table}, pg_sleep(%s)", (sleep_seconds,))  # noqa: S608
        connections.append(connection)
    time.sleep(0.3)  # the queries hold their locks before the primary asks for the exclusive one
    _execute(primary, f"TRUNCATE {table}", f"INSERT INTO {table} VALUES (1, 'after')")  # noqa: S608
    return connections


def wait_replayed(primary: dict[str, Any], replica: dict[str, Any], timeout: float = 30.0) -> None:
    """Until the replica replayed all the primary has flushed so far. ``primary`` and ``replica`` are psycopg2
    connection parameters (:meth:`PostgresServer.dsn`, or the drills' published DSNs)."""
    import psycopg2

    connection = psycopg2.connect(**primary, connect_timeout=3)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_flush_lsn()::text")
            target = cursor.fetchone()[0]
    finally:
        connection.close()
    connection = psycopg2.connect(**replica, connect_timeout=3)
    connection.autocommit = True
    deadline = time.monotonic() + timeout
    try:
        with connection.cursor() as cursor:
            while True:
                cursor.execute("SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), %s) >= 0", (target,))
                if cursor.fetchone()[0]:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the replica did not replay the primary's WAL within {timeout:.0f}s")
                time.sleep(0.05)
    finally:
        connection.close()
