"""Replica lag on a real primary + streaming replica, step by step: paused replay, a query holding replay, dry run,
maintenance window, the cancel cap across retries. Run state is an in-memory store (the DAG tests use the Variable)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from sandbox.postgres_replica_lag_data import hold_replay, pause_replay
from tests.sops.postgres_connections.conftest import window_around_now
from tests.sops.postgres_replica_lag.conftest import PairEnv
from toilless.sops.postgres_replica_lag import steps

pytestmark = pytest.mark.integration


def _replica_state(env: PairEnv) -> dict[str, Any]:
    connection = env.replica.connect("postgres")
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_is_wal_replay_paused(), "
                "(SELECT count(*) FROM pg_stat_activity WHERE application_name = 'report_runner' AND state = 'active')"
            )
            paused, running = cursor.fetchone()
    finally:
        connection.close()
    return {"paused": paused, "running": running}


def _settings(env: PairEnv, **overrides: Any) -> dict[str, Any]:
    env.configure(**overrides)
    return steps.resolve_settings({"dry_run": overrides.pop("dry_run", False)} if "dry_run" in overrides else {})


def test_paused_replay_is_found_and_resumed(pair_env: PairEnv, markers: dict[str, Any]) -> None:
    env = pair_env
    settings = _settings(env)
    pause_replay(env.primary, env.replica, env.table)
    time.sleep(1.3)
    diagnosis = steps.inspect_replication(settings)
    [replica] = diagnosis["replicas"]
    assert replica["causes"] == ["replay_paused"]
    assert replica["level"] == "critical"
    assert replica["lag_bytes"] > 0
    assert replica["lag_seconds"] >= 1
    assert any("free disk of the data directory" in line for line in replica["evidence"])
    assert any("no automatic failover" in line for line in replica["recommendations"])
    outcome = steps.act_on_replay(settings, diagnosis, run_id="run-resume")
    assert outcome["acted"] == 1
    assert _replica_state(env)["paused"] is False


def test_query_holding_replay_is_found_and_cancelled_never_more_than_the_cap(
    pair_env: PairEnv, markers: dict[str, Any]
) -> None:
    env = pair_env
    settings = _settings(env, max_cancels_per_run=1)
    hold_replay(env.primary, env.replica, env.table, queries=2)
    time.sleep(1.3)
    diagnosis = steps.inspect_replication(settings)
    [replica] = diagnosis["replicas"]
    assert replica["causes"] == ["replay_blocked_by_query"]
    assert len([action for action in replica["actions"] if action["kind"] == "cancel"]) == 2
    assert any("waits on Lock/relation" in line for line in replica["evidence"])
    first = steps.act_on_replay(settings, diagnosis, run_id="run-cancel")
    assert [result["status"] for result in first["results"]] == ["done", "cap"]
    # A retry of the run, diagnosing afresh: the cap holds across tries.
    retry = steps.act_on_replay(settings, steps.inspect_replication(settings), run_id="run-cancel")
    assert retry["acted"] == 0
    assert _replica_state(env)["running"] == 1


@pytest.mark.parametrize(
    "mode", [pytest.param("dry_run", id="dry-run"), pytest.param("maintenance", id="maintenance-window")]
)
def test_dry_run_and_maintenance_window_change_nothing(pair_env: PairEnv, markers: dict[str, Any], mode: str) -> None:
    env = pair_env
    if mode == "dry_run":
        env.configure()
        settings = steps.resolve_settings({"dry_run": True})
    else:
        settings = _settings(env, maintenance_window={**window_around_now(), "timezone": "UTC"})
    hold_replay(env.primary, env.replica, env.table)
    time.sleep(1.3)
    diagnosis = steps.inspect_replication(settings)
    outcome = steps.act_on_replay(settings, diagnosis, run_id=f"run-{mode}")
    assert outcome["acted"] == 0
    [result] = outcome["results"]
    assert result["status"] == ("dry_run" if mode == "dry_run" else "gate")
    assert ("maintenance window" in result["reason"]) is (mode == "maintenance")
    assert _replica_state(env)["running"] == 1
    assert markers == {}


def test_a_caught_up_replica_on_an_idle_primary_is_not_lagging(pair_env: PairEnv, markers: dict[str, Any]) -> None:
    env = pair_env
    settings = _settings(env)
    time.sleep(1.2)  # nothing written: the last replayed commit gets older, the replica is not behind
    [replica] = steps.inspect_replication(settings)["replicas"]
    assert replica["level"] == "ok"
    assert replica["lag_seconds"] == 0
    assert replica["causes"] == []


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        pytest.param({"critical_seconds": 0}, "critical_seconds must be above 0", id="threshold-0"),
        pytest.param(
            {"max_cancels_per_run": 0}, "max_cancels_per_run must be a whole number of at least 1", id="cap-0"
        ),
        pytest.param({"replicas": []}, "at least one replica", id="no-replicas"),
    ],
)
def test_bad_settings_fail_with_a_clear_message(pair_env: PairEnv, overrides: dict[str, Any], fragment: str) -> None:
    from toilless.sops.postgres_replica_lag.settings import SettingsError

    pair_env.configure(**overrides)
    with pytest.raises(SettingsError, match=fragment):
        steps.resolve_settings({})


def test_a_replica_connection_that_is_not_postgresql_is_refused(pair_env: PairEnv, set_connection: Any) -> None:
    from toilless.hooks.postgres_admin import NotPostgresConnection

    pair_env.configure()
    set_connection("pg_replica_under_test", {"conn_type": "redis", "host": "127.0.0.1"})
    with pytest.raises(NotPostgresConnection, match="not 'postgres'"):
        steps.resolve_settings({})


def test_a_replica_cut_off_from_its_primary_is_a_receive_side_problem(
    pair_env: PairEnv, markers: dict[str, Any]
) -> None:
    """The replica's primary_conninfo points at a closed port (what a network cut looks like from both ends): no
    walsender on the primary, no streaming WAL receiver on the replica."""
    from sandbox.ports import free_port
    from sandbox.postgres_replica_lag_data import write_on_primary

    env = pair_env
    settings = _settings(env)
    connection = env.replica.connect("postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SHOW primary_conninfo")
        original = cursor.fetchone()[0]
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "ALTER SYSTEM SET primary_conninfo = %s", (f"host=127.0.0.1 port={free_port()} user=postgres",)
            )
            cursor.execute("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 20
        while _streaming(connection):
            assert time.monotonic() < deadline, "the WAL receiver kept streaming"
            time.sleep(0.1)
        write_on_primary(env.primary, env.table)
        time.sleep(1.2)
        diagnosis = steps.inspect_replication(settings)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER SYSTEM SET primary_conninfo = %s", (original,))
            cursor.execute("SELECT pg_reload_conf()")
        env.replica.wait_streaming()
        connection.close()
    [replica] = diagnosis["replicas"]
    assert replica["causes"] == ["network_or_receive_side"]
    assert replica["level"] == "critical"
    assert replica["actions"] == []
    assert any("no pg_stat_replication row" in line for line in replica["evidence"])
    assert any("primary_conninfo" in line for line in replica["recommendations"])


def _streaming(connection: Any) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'")
        return bool(cursor.fetchone()[0])
