"""The replica_lag drill's injector, exporter, recovery check and restore, on the real primary + streaming replica."""

from __future__ import annotations

import time
from typing import Any

import pytest

from sandbox.drill import exporters, injectors, recovery, replica
from sandbox.postgres import PostgresReplica, PostgresServer
from sandbox.postgres_replica_lag_data import hold_replay


@pytest.fixture
def published(postgres_server: PostgresServer, postgres_replica: PostgresReplica) -> Any:
    facts = {
        "postgres_replica_lag": {
            "primary": postgres_server.dsn("postgres"),
            "replica": postgres_replica.dsn("postgres"),
        }
    }
    yield facts
    replica.stop_writes(facts["postgres_replica_lag"]["primary"])  # never leave the writer running after a failure


def _lag(published: dict[str, Any]) -> float:
    samples = exporters.EXPORTERS["replica_lag"](published)
    return next(value for series, value in samples.items() if series.startswith("pg_replication_lag_seconds{"))


def _until(predicate: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_paused_replay_lags_while_writes_go_on_and_resume_recovers(published: dict[str, Any]) -> None:
    check = recovery.CHECKS["replica_caught_up"]
    assert check(published)
    # Exactly 0 once the replica has replayed what it received: WAL that other work on the shared primary wrote a
    # moment ago (received, replay a few milliseconds behind) reads as a lag of milliseconds until it is replayed.
    assert _until(lambda: _lag(published) == 0.0)

    fault = injectors.INJECTORS["pause_replica_replay"](published)

    assert "pg_wal_replay_pause()" in fault
    assert _until(lambda: _lag(published) >= 2.0)  # the lag grows by the second while the primary commits
    assert replica.replication_lag(published["postgres_replica_lag"]["replica"])[1]  # replay paused
    assert not check(published)
    # What postgres_replica_lag's act_on_replay does for the cause replay_paused.
    replica._execute(published["postgres_replica_lag"]["replica"], "SELECT pg_wal_replay_resume()")
    assert _until(lambda: check(published))  # caught up although the writes go on

    injectors.RESTORERS["restore_replica"](published)

    assert replica._writers == {}
    assert check(published)
    assert _until(lambda: _lag(published) == 0.0)


def test_exporter_reports_what_postgres_exporter_would(published: dict[str, Any]) -> None:
    facts = published["postgres_replica_lag"]
    labels = f'instance="127.0.0.1:{facts["replica"]["port"]}",job="postgres",server="replica-1"'
    assert replica.replica_lag_exporter(published) == {
        f"pg_replication_lag_seconds{{{labels}}}": 0.0,
        f"pg_replication_is_replica{{{labels}}}": 1.0,
    }
    # Pointed at the primary, the collector says: not a replica, no lag.
    on_primary = {"postgres_replica_lag": {"primary": facts["primary"], "replica": facts["primary"]}}
    assert sorted(replica.replica_lag_exporter(on_primary).values()) == [0.0, 0.0]


def _replay_behind(published: dict[str, Any]) -> bool:
    rows = replica._execute(
        published["postgres_replica_lag"]["replica"],
        "SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) > 0",
    )
    return bool(rows[0][0])


def test_restore_ends_a_query_holding_replay(
    published: dict[str, Any], postgres_server: PostgresServer, postgres_replica: PostgresReplica
) -> None:
    held = hold_replay(postgres_server, postgres_replica, "drill_held", sleep_seconds=300)
    try:
        assert _until(lambda: _replay_behind(published), 10)  # the sandbox's demo fault: replay waits for the query
        time.sleep(1.0)
        assert _replay_behind(published)

        done = replica.restore_replica(published, long_query_seconds=0)

        assert "caught up" in done
        assert not _replay_behind(published)
        assert recovery.CHECKS["replica_caught_up"](published)
    finally:
        for connection in held:
            connection.close()
