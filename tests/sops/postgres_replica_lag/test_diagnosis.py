"""postgres_replica_lag's pure judgement: lag, causes, recommendations, allowed actions; settings; disk probes."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from toilless.common.config import LooseningParamError, read_defaults
from toilless.sops.postgres_replica_lag import disk, settings
from toilless.sops.postgres_replica_lag.diagnosis import diagnose_replica, match_replication_row, overall_level

SETTINGS = settings.resolve(read_defaults("postgres_replica_lag"), {})
REPLICA = {"name": "r1", "conn_id": "postgres_replica_1", "application_name": None, "disk": {"method": "none"}}
STREAMING = {"status": "streaming", "last_message_age_seconds": 1.0}
PRIMARY_ROW = {
    "state": "streaming",
    "sync_state": "async",
    "replay_behind_bytes": 4096,
    "sent_not_replayed_bytes": 4096,
}


def _observed(**status: Any) -> dict[str, Any]:
    base = {"unreplayed_bytes": 4096, "since_last_replay_seconds": 42.0, "replay_paused": False}
    return {"in_recovery": True, "status": {**base, **status}, "receiver": STREAMING, "blockers": [], "disk": None}


@pytest.mark.parametrize(
    ("observed", "primary_row", "level", "causes"),
    [
        pytest.param(
            _observed(unreplayed_bytes=0, since_last_replay_seconds=3600.0),
            {**PRIMARY_ROW, "replay_behind_bytes": 0},
            "ok",
            [],
            id="idle-primary-is-not-lag",
        ),
        pytest.param(
            _observed(since_last_replay_seconds=6.0), PRIMARY_ROW, "warning", ["replay_slow"], id="warning-5s"
        ),
        pytest.param(_observed(replay_paused=True), PRIMARY_ROW, "critical", ["replay_paused"], id="paused"),
        pytest.param(
            {**_observed(unreplayed_bytes=0), "receiver": {"status": "waiting"}},
            PRIMARY_ROW,
            "critical",
            ["network_or_receive_side"],
            id="receiver-not-streaming",
        ),
        pytest.param(
            {**_observed(unreplayed_bytes=0), "receiver": None},
            None,
            "critical",
            ["network_or_receive_side"],
            id="no-receiver",
        ),
        pytest.param(
            {**_observed(unreplayed_bytes=0), "receiver": {**STREAMING, "last_message_age_seconds": 300.0}},
            PRIMARY_ROW,
            "critical",
            ["network_or_receive_side"],
            id="receiver-silent",
        ),
        pytest.param({"error": "connection refused"}, PRIMARY_ROW, "unknown", ["unreachable"], id="unreachable"),
        pytest.param({"in_recovery": False}, None, "unknown", ["not_a_replica"], id="promoted"),
    ],
)
def test_lag_and_its_cause(
    observed: dict[str, Any], primary_row: dict[str, Any] | None, level: str, causes: list[str]
) -> None:
    result = diagnose_replica(REPLICA, observed, primary_row, SETTINGS)
    assert result["level"] == level
    assert result["causes"] == causes


def test_low_disk_is_a_cause_of_its_own() -> None:
    observed = {**_observed(), "disk": {"method": "path", "free_bytes": 5, "total_bytes": 100, "free_pct": 5.0}}
    result = diagnose_replica(REPLICA, observed, PRIMARY_ROW, SETTINGS)
    assert "disk" in result["causes"]


def _blocker(**fields: Any) -> dict[str, Any]:
    return {
        "pid": 7,
        "backend_start": "2026-01-01T00:00:00+00:00",
        "query_start": "2026-01-01T00:00:01+00:00",
        "application_name": "report",
        "usename": "analyst",
        "query_seconds": 120.0,
        "conflict": "lock",
        "query": "SELECT ?",
        **fields,
    }


@pytest.mark.parametrize(
    ("blocker", "settings_overrides", "cancels"),
    [
        pytest.param(_blocker(), {}, 1, id="cancel"),
        pytest.param(_blocker(application_name="toilless_x"), {}, 0, id="never-toilless"),
        pytest.param(_blocker(query_seconds=5.0), {}, 0, id="query-too-young"),
        pytest.param(_blocker(), {"cancel_blocking_queries": False}, 0, id="switched-off"),
        pytest.param(_blocker(), {"action_min_lag_seconds": 100.0}, 0, id="lag-under-action-threshold"),
    ],
)
def test_cancel_is_planned_only_within_policy(
    blocker: dict[str, Any], settings_overrides: dict[str, Any], cancels: int
) -> None:
    observed = {**_observed(), "blockers": [blocker], "startup_wait": {"type": "Lock", "event": "relation"}}
    result = diagnose_replica(REPLICA, observed, PRIMARY_ROW, {**SETTINGS, **settings_overrides})
    assert result["causes"] == ["replay_blocked_by_query"]
    assert len([action for action in result["actions"] if action["kind"] == "cancel"]) == cancels


def test_failover_is_only_ever_recommended() -> None:
    result = diagnose_replica(REPLICA, _observed(replay_paused=True), PRIMARY_ROW, SETTINGS)
    assert {action["kind"] for action in result["actions"]} == {"resume"}
    assert any("no automatic failover" in line and "42.0 s behind" in line for line in result["recommendations"])


def test_replication_row_is_matched_by_application_name_else_the_only_one() -> None:
    rows = [{"application_name": "a"}, {"application_name": "b"}]
    assert match_replication_row({**REPLICA, "application_name": "b"}, rows) == rows[1]
    assert match_replication_row(REPLICA, rows) is None
    assert match_replication_row(REPLICA, rows[:1]) == rows[0]
    assert overall_level([{"level": "ok"}, {"level": "critical"}]) == "critical"


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        pytest.param({"warning_seconds": 0}, "warning_seconds must be above 0", id="threshold-0"),
        pytest.param({"max_cancels_per_run": -1}, "at least 1", id="cap-negative"),
        pytest.param(
            {"replicas": [{"conn_id": "postgres_primary"}]}, "the primary's Connection", id="replica-is-primary"
        ),
        pytest.param(
            {"replicas": [{"conn_id": "x", "disk": {"method": "ssh"}}]}, "disk.method", id="unknown-disk-method"
        ),
        pytest.param(
            {"replicas": [{"conn_id": "x", "disk": {"method": "path", "path": "rel"}}]}, "absolute", id="relative-path"
        ),
        pytest.param(
            {"replicas": [{"conn_id": "x", "disk": {"method": "command", "argv": "df -h"}}]}, "argv", id="shell-string"
        ),
    ],
)
def test_bad_settings(overrides: dict[str, Any], fragment: str) -> None:
    with pytest.raises(settings.SettingsError, match=fragment):
        settings.resolve({**read_defaults("postgres_replica_lag"), **overrides}, {})


def test_params_never_loosen() -> None:
    with pytest.raises(LooseningParamError):
        settings.resolve(read_defaults("postgres_replica_lag"), {"max_cancels": 99})


def test_disk_probes(tmp_path: Any) -> None:
    measured = disk.measure({"method": "path", "path": str(tmp_path)})
    assert measured is not None
    assert 0 < measured["free_pct"] <= 100
    command = disk.measure({"method": "command", "argv": [sys.executable, "-c", "print(25, 100)"]})
    assert command == {"method": "command", "free_bytes": 25, "total_bytes": 100, "free_pct": 25.0}
    assert "error" in (disk.measure({"method": "command", "argv": [sys.executable, "-c", "print('x')"]}) or {})
    assert disk.measure({"method": "none"}) is None


def test_a_cut_off_replica_with_no_replayed_commit_is_critical_by_the_bytes_it_misses() -> None:
    observed = {
        **_observed(unreplayed_bytes=0, since_last_replay_seconds=None, replay_lsn="0/3000000"),
        "receiver": None,
    }
    result = diagnose_replica(REPLICA, observed, None, SETTINGS, primary_flush_lsn="0/3001000")
    assert result["level"] == "critical"
    assert result["lag_bytes"] == 4096
    assert result["causes"] == ["network_or_receive_side"]
    caught_up = diagnose_replica(REPLICA, observed, None, SETTINGS, primary_flush_lsn="0/3000000")
    assert caught_up["lag_bytes"] == 0
