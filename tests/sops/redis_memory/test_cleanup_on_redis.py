"""redis_memory's steps on a real Redis, without the DAG around them: the cleanup's bounds and re-checks, a retried
run's total, bad input. Run state is an in-memory store here (the DAG tests use the real Variables)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from sandbox.redis_server import RedisServer
from tests.sops.redis_memory import keyspace
from toilless.common.config import LooseningParamError, read_defaults
from toilless.common.errors import InvalidInput
from toilless.hooks.redis import RedisHook
from toilless.sops.redis_memory import settings as settings_module
from toilless.sops.redis_memory import steps

pytestmark = pytest.mark.integration

ACTING = {
    "dry_run": False,
    "respect_maintenance_window": False,
    "eviction_sample_seconds": 0.1,
    "cleanup": {"prefixes": keyspace.CONFIGURED, "idle_seconds": keyspace.DAY, "when": "always", "batch_size": 25},
}


class MemoryState:
    """``read_state`` / ``write_state`` over a dict, as the Variables would keep it (JSON round trip)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def read(self, key: str) -> dict[str, Any]:
        return copy.deepcopy(self.values.get(key, {}))

    def write(self, key: str, value: dict[str, Any]) -> None:
        self.values[key] = copy.deepcopy(value)


@pytest.fixture
def state(monkeypatch: pytest.MonkeyPatch) -> MemoryState:
    store = MemoryState()
    monkeypatch.setattr(steps, "read_state", store.read)
    monkeypatch.setattr(steps, "write_state", store.write)
    return store


def resolved(params: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    config = read_defaults("redis_memory")
    config.update({key: value for key, value in ACTING.items() if key != "cleanup"})
    config["cleanup"].update(ACTING["cleanup"])
    for key, value in overrides.items():
        if isinstance(value, dict):
            config[key].update(value)
        else:
            config[key] = value
    return settings_module.resolve(config, params or {})


def diagnose_and_clean(settings: dict[str, Any], run_id: str = "run-1") -> dict[str, Any]:
    diagnosis = steps.diagnose_memory(settings)
    return steps.clean_idle_keys(settings, diagnosis, {"run_id": run_id})


def test_unlink_deletes_only_candidates_and_reports_memory_before_and_after(
    redis_server: RedisServer, state: MemoryState
) -> None:
    client = redis_server.client()
    keyspace.fill(client)
    client.set("session:big", b"x" * 1048576)
    keyspace.make_idle(client, [b"session:big"], 10 * keyspace.DAY)
    outside_before = keyspace.digest(client, outside=keyspace.CONFIGURED)

    outcome = diagnose_and_clean(resolved(cleanup={"action": "unlink"}))

    remaining = set(client.scan_iter(match=b"session:*"))
    assert not (keyspace.candidates() | {b"session:big"}) & remaining
    assert len(remaining) == 30  # the fresh and the expiring ones
    assert keyspace.digest(client, outside=keyspace.CONFIGURED) == outside_before
    assert outcome["acted"] == 121
    assert outcome["used_bytes_before"] - outcome["used_bytes_after"] > 1_000_000


def test_at_most_n_keys_per_run(redis_server: RedisServer, state: MemoryState) -> None:
    client = redis_server.client()
    keyspace.fill(client)

    outcome = diagnose_and_clean(resolved(cleanup={"max_keys_per_run": 30}))

    expiring = [key for key in keyspace.candidates() if client.pttl(key) > 0]
    assert len(expiring) == 30
    assert outcome["acted"] == 30
    assert "at most 30 keys per run" in outcome["prefixes"][0]["stopped_by"]


def test_a_retried_run_never_exceeds_n_in_total_even_when_an_answer_was_lost(
    redis_server: RedisServer, state: MemoryState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """First try: the second batch runs on Redis, then the connection drops before the answer (task fails). The
    retry (same run id) may only spend what is left of N, counting the lost batch as spent."""
    client = redis_server.client()
    keyspace.fill(client)
    settings = resolved(cleanup={"max_keys_per_run": 60})
    original = RedisHook.act_on_idle_keys
    calls = {"count": 0}

    def lose_the_second_answer(self: RedisHook, keys: Any, **kwargs: Any) -> list[bytes]:
        done = original(self, keys, **kwargs)
        calls["count"] += 1
        if calls["count"] == 2:
            raise ConnectionError("connection reset after the script ran")
        return done

    monkeypatch.setattr(RedisHook, "act_on_idle_keys", lose_the_second_answer)
    with pytest.raises(ConnectionError):
        diagnose_and_clean(settings, run_id="retried-run")
    assert sum(client.pttl(key) > 0 for key in keyspace.candidates()) == 50

    outcome = diagnose_and_clean(settings, run_id="retried-run")

    assert sum(client.pttl(key) > 0 for key in keyspace.candidates()) == 60
    assert outcome["acted"] == 10
    assert outcome["run_total"] == 60
    # A third try finds the budget spent and acts on nothing.
    assert diagnose_and_clean(settings, run_id="retried-run")["acted"] == 0
    assert sum(client.pttl(key) > 0 for key in keyspace.candidates()) == 60


def test_a_key_used_or_given_a_ttl_after_it_was_chosen_is_left_alone(
    redis_server: RedisServer, state: MemoryState, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = redis_server.client()
    keyspace.fill(client)
    original = RedisHook.act_on_idle_keys
    touched, expiring = b"session:3", b"session:4"

    def race(self: RedisHook, keys: Any, **kwargs: Any) -> list[bytes]:
        # Between the pre-filter and the script: an application reads one key and gives another a TTL.
        client.get(touched)
        client.expire(expiring, 5000)
        return original(self, keys, **kwargs)

    monkeypatch.setattr(RedisHook, "act_on_idle_keys", race)

    outcome = diagnose_and_clean(resolved(cleanup={"action": "unlink"}))

    assert client.exists(touched)
    assert client.pttl(touched) == -1
    assert 0 < client.pttl(expiring) <= 5_000_000
    assert outcome["acted"] == 118
    assert outcome["prefixes"][0]["left_alone"] == 2


def test_lfu_policy_means_no_cleanup_because_idle_time_is_not_tracked(
    redis_server: RedisServer, state: MemoryState
) -> None:
    client = redis_server.client()
    keyspace.fill(client)
    client.config_set("maxmemory-policy", "allkeys-lfu")
    before = keyspace.digest(client, with_idle=False)

    outcome = diagnose_and_clean(resolved())

    assert outcome == {"planned": False, "reason": outcome["reason"], "acted": 0}
    assert "does not track idle time" in outcome["reason"]
    assert keyspace.digest(client, with_idle=False) == before


@pytest.mark.parametrize(
    ("overrides", "params", "message"),
    [
        pytest.param({"cleanup": {"prefixes": ["*"]}}, {}, "would match every key", id="prefix-star"),
        pytest.param({"cleanup": {"prefixes": [""]}}, {}, "would match every key", id="prefix-empty"),
        pytest.param({"cleanup": {"prefixes": ["  "]}}, {}, "would match every key", id="prefix-blank"),
        pytest.param({"cleanup": {"prefixes": ["session:*"]}}, {}, "glob character", id="prefix-glob"),
        pytest.param({"cleanup": {"idle_seconds": 0}}, {}, "cleanup.idle_seconds must be", id="idle-zero"),
        pytest.param({"cleanup": {"max_keys_per_run": 0}}, {}, "cleanup.max_keys_per_run must be", id="max-zero"),
        pytest.param({"cleanup": {"ttl_seconds": 0}}, {}, "cleanup.ttl_seconds must be", id="ttl-zero"),
        pytest.param({"cleanup": {"batch_size": 0}}, {}, "cleanup.batch_size must be", id="batch-zero"),
        pytest.param({"sampling": {"max_seconds": 0}}, {}, "sampling.max_seconds must be", id="time-cap-zero"),
        pytest.param({"sampling": {"prefix_separator": ""}}, {}, "prefix_separator", id="separator-empty"),
        pytest.param({}, {"idle_seconds": 0}, "would loosen", id="param-idle-zero"),
        pytest.param({}, {"max_keys_per_run": 5000}, "would loosen", id="param-more-keys"),
        pytest.param({}, {"prefixes": ["cache:"]}, "not among the configured", id="param-other-prefix"),
        pytest.param({}, {"prefixes": ["*"]}, "would match every key", id="param-prefix-star"),
    ],
)
def test_bad_input_is_refused_before_redis_is_touched(
    redis_server: RedisServer, overrides: dict[str, Any], params: dict[str, Any], message: str
) -> None:
    client = redis_server.client()
    keyspace.fill(client)
    before = keyspace.digest(client)
    with pytest.raises(InvalidInput) as caught:
        resolved(params, **overrides)
    assert message in str(caught.value)
    assert keyspace.digest(client) == before


def test_a_loosening_param_is_a_loosening_error() -> None:
    with pytest.raises(LooseningParamError):
        resolved({"allow_cleanup": True}, cleanup={"allow": False})


def test_resolve_settings_refuses_a_connection_that_is_not_redis(
    set_variable: Callable[[str, Any], None], set_connection: Callable[[str, dict[str, Any]], None]
) -> None:
    set_connection("some_db", {"conn_type": "postgres", "host": "127.0.0.1"})
    set_variable("toilless_redis_memory", {"redis_conn_id": "some_db"})
    with pytest.raises(InvalidInput, match="is of type 'postgres', not 'redis'"):
        steps.resolve_settings({})
    set_variable("toilless_redis_memory", {"redis_conn_id": "missing_conn"})
    with pytest.raises(InvalidInput, match="'missing_conn' is not defined"):
        steps.resolve_settings({})


def test_the_hook_never_resends_a_command_on_its_own(redis_server: RedisServer) -> None:
    """redis-py re-sends a command after a dropped connection by default: a cleanup script whose answer was lost would
    run again and report fewer keys than it acted on, and the budget would give them back. The hook turns that off;
    the task's retry (with the reservation kept) decides instead."""
    hook = RedisHook(redis_conn_id="redis_default", client_name="toilless-test")
    try:
        assert hook.client.get_retry().get_retries() == 0
        assert hook.own_client_id() > 0
        listed = hook.client_list([hook.own_client_id()])
        assert b"name=toilless-test" in listed
    finally:
        hook.close()
