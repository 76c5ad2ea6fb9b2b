"""Ending sessions on a real server, step by step: the cap across retries and crashes, recycled pids, changed
sessions. The run-state store is an in-memory dict here (the DAG tests use the real Variable)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.sops.postgres_connections.conftest import CONN_ID, PgEnv, window_around_now
from toilless.sops.postgres_connections import steps

pytestmark = pytest.mark.integration


@pytest.fixture
def markers(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    store: dict[str, Any] = {}
    monkeypatch.setattr(steps, "read_state", lambda key: store.get(key, {}))
    monkeypatch.setattr(
        steps,
        "write_state",
        lambda key, value: store.__setitem__(key, __import__("json").loads(__import__("json").dumps(value))),
    )
    return store


def _settings(env: PgEnv, **overrides: Any) -> dict[str, Any]:
    env.configure(**overrides)
    return steps.resolve_settings({})


def test_a_retried_run_never_ends_more_than_n_in_total(pg_env: PgEnv, markers: dict[str, Any]) -> None:
    env = pg_env
    settings = _settings(env, max_terminations_per_run=2)
    pids = env.storm.open(6, application=env.app, mode="idle_in_transaction")
    time.sleep(0.8)
    first = steps.end_idle_sessions(settings, steps.inspect_connections(settings), run_id="run-1")
    assert first["ended"] == 2
    # A retry of the same run diagnoses again (the first try's XCom is gone): four eligible sessions are left.
    retry_diagnosis = steps.inspect_connections(settings)
    assert len(retry_diagnosis["to_end"]) == 2
    retry = steps.end_idle_sessions(settings, retry_diagnosis, run_id="run-1")
    assert retry["ended"] == 0
    assert {result["status"] for result in retry["results"]} == {"cap"}
    assert len(set(pids) - env.storm.alive(pids)) == 2
    # Another run may end its own N.
    assert steps.end_idle_sessions(settings, steps.inspect_connections(settings), run_id="run-2")["ended"] == 2


def test_a_crash_right_after_ending_still_counts_against_the_cap(
    pg_env: PgEnv, markers: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from toilless.hooks.postgres_admin import PostgresAdminHook

    env = pg_env
    settings = _settings(env, max_terminations_per_run=1)
    pids = env.storm.open(3, application=env.app, mode="idle_in_transaction")
    time.sleep(0.8)
    real_terminate = PostgresAdminHook.terminate_backend

    def terminate_then_crash(self: PostgresAdminHook, **kwargs: Any) -> bool:
        real_terminate(self, **kwargs)
        raise ConnectionError("worker lost right after pg_terminate_backend")

    monkeypatch.setattr(PostgresAdminHook, "terminate_backend", terminate_then_crash)
    diagnosis = steps.inspect_connections(settings)
    with pytest.raises(ConnectionError):
        steps.end_idle_sessions(settings, diagnosis, run_id="run-crash")
    monkeypatch.setattr(PostgresAdminHook, "terminate_backend", real_terminate)
    retry = steps.end_idle_sessions(settings, steps.inspect_connections(settings), run_id="run-crash")
    assert retry["ended"] == 0
    assert len(set(pids) - env.storm.alive(pids)) == 1


def test_a_recycled_pid_or_a_session_that_moved_on_is_never_ended(pg_env: PgEnv, markers: dict[str, Any]) -> None:
    env = pg_env
    settings = _settings(env, max_terminations_per_run=5)
    [recycled, busy] = env.storm.open(2, application=env.app, mode="idle_in_transaction")
    time.sleep(0.8)
    diagnosis = steps.inspect_connections(settings)
    planned = {item["pid"]: item for item in diagnosis["to_end"]}
    # Same pid, another session: what the plan holds no longer exists under that identity.
    planned[recycled] = {**planned[recycled], "backend_start": "2000-01-01T00:00:00+00:00"}
    # The other session did work since it was read: it is no longer idle in a transaction long enough.
    busy_connection = env.storm.connections[-1]
    busy_connection.commit()
    busy_connection.autocommit = True
    outcome = steps.end_idle_sessions(settings, {**diagnosis, "to_end": list(planned.values())}, run_id="run-x")
    statuses = {result["pid"]: result["status"] for result in outcome["results"]}
    assert statuses == {recycled: "gone", busy: "not_eligible"}
    assert env.storm.alive([recycled, busy]) == {recycled, busy}


def test_circuit_breaker_stops_ending_across_runs(pg_env: PgEnv, markers: dict[str, Any]) -> None:
    env = pg_env
    settings = _settings(
        env, max_terminations_per_run=5, gate={"circuit_breaker": {"max_actions": 2, "window_hours": 1}}
    )
    pids = env.storm.open(4, application=env.app, mode="idle_in_transaction")
    time.sleep(0.8)
    outcome = steps.end_idle_sessions(settings, steps.inspect_connections(settings), run_id="run-b")
    assert outcome["ended"] == 2
    assert [result["status"] for result in outcome["results"]][2:] == ["gate", "gate"]
    assert "circuit breaker" in outcome["results"][-1]["reason"]
    assert len(env.storm.alive(pids)) == 2


def test_dry_run_ends_nothing_and_says_what_it_would_end(pg_env: PgEnv, markers: dict[str, Any]) -> None:
    from toilless.sops.postgres_connections import messages

    env = pg_env
    env.configure()
    settings = steps.resolve_settings({"dry_run": True})
    pids = env.storm.open(2, application=env.app, mode="idle_in_transaction")
    time.sleep(0.8)
    diagnosis = steps.inspect_connections(settings)
    outcome = steps.end_idle_sessions(settings, diagnosis, run_id="run-dry")
    assert outcome["ended"] == 0
    assert [result["status"] for result in outcome["results"]] == ["dry_run", "dry_run"]
    assert env.storm.alive(pids) == set(pids)
    assert markers == {}
    report = messages.report(settings, diagnosis, outcome)
    assert report["title"].endswith("(dry run: nothing was changed)")
    assert sum(1 for line in report["lines"] if str(line).startswith("Would end pid")) == 2


def test_inside_the_maintenance_window_nothing_is_ended(pg_env: PgEnv, markers: dict[str, Any]) -> None:
    env = pg_env
    settings = _settings(env, maintenance_window={**window_around_now(), "timezone": "UTC"})
    pids = env.storm.open(2, application=env.app, mode="idle_in_transaction")
    time.sleep(0.8)
    outcome = steps.end_idle_sessions(settings, steps.inspect_connections(settings), run_id="run-window")
    assert outcome["ended"] == 0
    assert {result["status"] for result in outcome["results"]} == {"gate"}
    assert all("maintenance window" in result["reason"] for result in outcome["results"])
    assert env.storm.alive(pids) == set(pids)
    assert markers == {}


def test_a_connection_that_is_not_postgresql_is_refused_before_anything_is_read(
    pg_env: PgEnv, set_connection: Any
) -> None:
    from toilless.hooks.postgres_admin import NotPostgresConnection

    pg_env.configure()
    set_connection(CONN_ID, {"conn_type": "mysql", "host": "127.0.0.1", "port": pg_env.server.port})
    pids = pg_env.storm.open(1, application=pg_env.app, mode="idle_in_transaction")
    with pytest.raises(NotPostgresConnection, match="not 'postgres'"):
        steps.resolve_settings({})
    assert pg_env.storm.alive(pids) == set(pids)
