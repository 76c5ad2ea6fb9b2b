"""The ``replica_lag`` drill: replay paused on the sandbox's streaming replica while the primary keeps writing.

The pair is the sandbox's (``published["postgres_replica_lag"]``: the primary's and the replica's connection facts).

- injector :func:`pause_replica_replay`: ``pg_wal_replay_pause()`` on the replica, and a writer that commits on the
  primary every :data:`WRITE_EVERY_SECONDS` until the drill restores the pair (the lag grows by the second, as with
  real traffic);
- exporter :func:`replica_lag_exporter`: ``pg_replication_lag_seconds`` exactly as postgres_exporter's
  ``pg_replication`` collector computes it on the replica (0 once it replayed all it received);
- recovery :func:`replica_caught_up`: replay not paused and the same lag under :data:`HEALTHY_LAG_SECONDS` (the SOP's
  warning level);
- restore :func:`restore_replica`: the writer stopped, replay resumed, the queries holding replay cancelled (the
  sandbox starts with its own demo fault, a ``nightly_report`` query holding replay), and the replica caught up.
"""

from __future__ import annotations

import threading
from typing import Any

from sandbox.postgres_replica_lag_data import wait_replayed

#: postgres_exporter's pg_replication collector (collector/pg_replication.go), the lag Prometheus would see.
LAG_QUERY = """
SELECT
  CASE
    WHEN NOT pg_is_in_recovery() THEN 0
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
    ELSE GREATEST(0, EXTRACT(EPOCH FROM (now() - pg_last_xact_replay_timestamp())))
  END AS lag,
  CASE WHEN pg_is_in_recovery() THEN 1 ELSE 0 END AS is_replica
"""
#: The SOP's warning level (include/config/postgres_replica_lag.yaml): under it the replica is healthy.
HEALTHY_LAG_SECONDS = 5.0
WRITE_EVERY_SECONDS = 0.5
TABLE = "drill_replica_lag_writes"
#: The replica in the alert's labels and the SOP's config (sandbox/services/postgres_replica_lag.py).
REPLICA_NAME = "replica-1"

_writers: dict[int, tuple[threading.Thread, threading.Event]] = {}
_writers_lock = threading.Lock()


def _connect(dsn: dict[str, Any]) -> Any:
    import psycopg2

    connection = psycopg2.connect(**dsn, connect_timeout=3, application_name="toilless_drill")
    connection.autocommit = True
    return connection


def _execute(dsn: dict[str, Any], *statements: str) -> list[tuple[Any, ...]]:
    connection = _connect(dsn)
    try:
        rows: list[tuple[Any, ...]] = []
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
                rows = list(cursor.fetchall()) if cursor.description else []
        return rows
    finally:
        connection.close()


def _pair(published: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    facts = published["postgres_replica_lag"]
    return dict(facts["primary"]), dict(facts["replica"])


def replication_lag(replica: dict[str, Any]) -> tuple[float, bool]:
    """(lag seconds as postgres_exporter reports it, replay paused) read on the replica."""
    connection = _connect(replica)
    try:
        with connection.cursor() as cursor:
            cursor.execute(LAG_QUERY)
            lag = cursor.fetchone()[0]
            cursor.execute("SELECT pg_is_in_recovery() AND pg_is_wal_replay_paused()")
            paused = cursor.fetchone()[0]
    finally:
        connection.close()
    return float(lag or 0), bool(paused)


def _write_loop(primary: dict[str, Any], stop: threading.Event) -> None:
    # Commits with synchronous_commit on: the flushed WAL the replica receives contains them at once.
    connection = None
    while not stop.is_set():
        try:
            if connection is None or connection.closed:
                connection = _connect(primary)
                with connection.cursor() as cursor:
                    cursor.execute("SET synchronous_commit = on")
            with connection.cursor() as cursor:
                cursor.execute(f"INSERT INTO {TABLE} (at) VALUES (clock_timestamp())")  # noqa: S608
        except Exception:  # the primary restarting must not end the traffic for good; try again next tick
            connection = None
        stop.wait(WRITE_EVERY_SECONDS)
    if connection is not None:
        connection.close()


def start_writes(primary: dict[str, Any]) -> None:
    """Commits on the primary every WRITE_EVERY_SECONDS, in a thread, until :func:`stop_writes`."""
    _execute(
        primary,
        "SET synchronous_commit = on",  # flushed at once: the flush position below includes this commit
        f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigserial PRIMARY KEY, at timestamptz)",
        f"INSERT INTO {TABLE} (at) VALUES (clock_timestamp())",  # noqa: S608
    )
    key = int(primary["port"])
    with _writers_lock:
        if key in _writers:
            return
        stop = threading.Event()
        thread = threading.Thread(target=_write_loop, args=(primary, stop), daemon=True, name="drill-primary-writes")
        _writers[key] = (thread, stop)
    thread.start()


def stop_writes(primary: dict[str, Any]) -> None:
    with _writers_lock:
        found = _writers.pop(int(primary["port"]), None)
    if found is not None:
        thread, stop = found
        stop.set()
        thread.join(timeout=10)


def pause_replica_replay(published: dict[str, Any]) -> str:
    """The fault: replay paused on the replica; the primary keeps committing."""
    primary, replica = _pair(published)
    start_writes(primary)
    # A replica that has replayed no commit yet has no last replay timestamp, and its lag reads 0 (postgres_exporter
    # too): let it replay the writes' first commit before pausing, as a replica in service always has.
    wait_replayed(primary, replica, timeout=30)
    _execute(replica, "SELECT pg_wal_replay_pause()")
    return (
        f"pg_wal_replay_pause() on the replica ({replica['host']}:{replica['port']}); "
        f"the primary commits every {WRITE_EVERY_SECONDS:g} s"
    )


def replica_lag_exporter(published: dict[str, Any]) -> dict[str, float]:
    """postgres_exporter's ``pg_replication_lag_seconds`` and ``pg_replication_is_replica`` for the replica."""
    from sandbox.drill.exporters import labels_text

    _, replica = _pair(published)
    lag, is_replica = _execute(replica, LAG_QUERY)[0]
    labels = labels_text(
        {"job": "postgres", "server": REPLICA_NAME, "instance": f"{replica['host']}:{replica['port']}"}
    )
    return {
        f"pg_replication_lag_seconds{{{labels}}}": float(lag or 0),
        f"pg_replication_is_replica{{{labels}}}": float(is_replica),
    }


def replica_caught_up(published: dict[str, Any]) -> bool:
    """Healthy: replay running and the lag under the SOP's warning level."""
    try:
        lag, paused = replication_lag(_pair(published)[1])
    except Exception:  # a replica that cannot be asked is not healthy
        return False
    return not paused and lag < HEALTHY_LAG_SECONDS


def restore_replica(published: dict[str, Any], *, timeout: float = 60.0, long_query_seconds: float = 30.0) -> str:
    """Writer stopped, replay resumed, client queries holding replay cancelled, replica caught up with the primary."""
    primary, replica = _pair(published)
    stop_writes(primary)
    connection = _connect(replica)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_wal_replay_resume() WHERE pg_is_wal_replay_paused()")
            # The sandbox's own demo fault (sandbox/services/postgres_replica_lag.py): a query holding replay for an
            # hour. Only long ones: a runbook's own short queries on the replica are left alone.
            cursor.execute(
                "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                "AND pid <> pg_backend_pid() AND state = 'active' "
                "AND query_start <= now() - make_interval(secs => %s)",
                (float(long_query_seconds),),
            )
    finally:
        connection.close()
    wait_replayed(primary, replica, timeout)
    return "writes stopped, replay resumed, queries holding replay cancelled, replica caught up"
