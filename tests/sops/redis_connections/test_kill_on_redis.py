"""redis_connections' steps on a real Redis with real connections, without the DAG: pressure and advice, the budget
across retries, the re-read before each kill, Toilless's own connection, bad input. Run state in memory here."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from sandbox.redis_server import RedisServer
from tests.sops.redis_connections.crowd import Crowd
from toilless.common.config import read_defaults
from toilless.common.errors import InvalidInput
from toilless.hooks.redis import RedisHook
from toilless.sops.redis_connections import clients, steps
from toilless.sops.redis_connections import settings as settings_module

pytestmark = pytest.mark.integration


class MemoryState:
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
    config = read_defaults("redis_connections")
    config.update({"dry_run": False, "respect_maintenance_window": False, "sample_seconds": 0.1})
    config["kill"].update({"client_names": ["billing-worker"], "idle_seconds": 1, "when": "always"})
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key].update(value)
        else:
            config[key] = value
    return settings_module.resolve(config, params or {})


def run(settings: dict[str, Any], run_id: str = "run-1") -> tuple[dict[str, Any], dict[str, Any]]:
    diagnosis = steps.diagnose_connections(settings)
    return diagnosis, steps.kill_idle_clients(settings, diagnosis, {"run_id": run_id})


def test_pressure_findings_and_pool_advice(redis_server: RedisServer, crowd: Crowd, state: MemoryState) -> None:
    with redis_server.client() as admin:
        admin.config_set("maxclients", "40")
    crowd.open("billing-worker", 20)
    crowd.open("api", 15)
    settings = resolved(kill={"when": "pressure", "idle_seconds": 3600}, pools={"billing-worker": 10, "api": 50})

    diagnosis, outcome = run(settings)

    assessment = diagnosis["assessment"]
    assert assessment["level"] == "warning"  # 36 of 40 (its own connection included): 90%
    assert any("of maxclients 40" in finding for finding in assessment["findings"])
    assert any("billing-worker: 20 connections, more than its pool of 10" in line for line in assessment["advice"])
    assert not any(line.startswith("api:") for line in assessment["advice"])
    assert outcome["ended_count"] == 0  # none idle for an hour
    assert outcome["chosen"] == 0


def test_rejected_connections_are_counted(redis_server: RedisServer, crowd: Crowd, state: MemoryState) -> None:
    with redis_server.client() as admin:
        connected = int(admin.info("clients")["connected_clients"])
        admin.config_set("maxclients", str(connected + 2))
        crowd.open("api", 2)
        with pytest.raises(Exception, match="max number of clients"):
            crowd.open("api", 1)
        admin.config_set("maxclients", "1000")

    diagnosis, _ = run(resolved())

    assert diagnosis["figures"]["rejected_total"] >= 1
    assert any("rejected" in finding for finding in diagnosis["assessment"]["findings"])


def test_a_retried_run_never_ends_more_than_n_in_total(
    redis_server: RedisServer, crowd: Crowd, state: MemoryState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """First try: the 3rd kill happens on Redis but its answer is lost (task fails). The retry may only end what is
    left of N = 12, counting the whole first batch as spent."""
    billing = crowd.open("billing-worker", 30)
    crowd.wait_idle(1.1)
    settings = resolved(kill={"max_clients_per_run": 12})
    original = RedisHook.kill_client
    calls = {"count": 0}

    def lose_the_third_answer(self: RedisHook, client_id: int) -> int:
        ended = original(self, client_id)
        calls["count"] += 1
        if calls["count"] == 3:
            raise ConnectionError("connection reset after CLIENT KILL ran")
        return ended

    monkeypatch.setattr(RedisHook, "kill_client", lose_the_third_answer)
    with pytest.raises(ConnectionError):
        run(settings, run_id="retried")
    assert len(set(billing) - set(crowd.listed())) == 3

    _, outcome = run(settings, run_id="retried")

    # The first batch of 10 stays spent (its answer was lost): 2 more, 5 ended in all, never more than 12.
    assert outcome["ended_count"] == 2
    assert outcome["run_total"] == 12
    assert len(set(billing) - set(crowd.listed())) == 5
    _, third = run(settings, run_id="retried")
    assert third["ended_count"] == 0
    assert len(set(billing) - set(crowd.listed())) == 5


def test_at_most_n_per_run(redis_server: RedisServer, crowd: Crowd, state: MemoryState) -> None:
    billing = crowd.open("billing-worker", 25)
    crowd.wait_idle(1.1)

    _, outcome = run(resolved(kill={"max_clients_per_run": 7}))

    assert outcome["ended_count"] == 7
    assert len(set(billing) - set(crowd.listed())) == 7
    assert "at most 7 connections per run" in outcome["refused"]


def test_a_connection_used_or_renamed_after_it_was_chosen_is_left_alone(
    redis_server: RedisServer, crowd: Crowd, state: MemoryState, monkeypatch: pytest.MonkeyPatch
) -> None:
    billing = crowd.open("billing-worker", 4)
    crowd.wait_idle(1.1)
    used, renamed = crowd.connections[0][1], crowd.connections[1][1]
    original = clients.end_idle

    def race(chosen: Any, **kwargs: Any) -> dict[str, Any]:
        used.ping()
        renamed.client_setname("reporting")
        return original(chosen, **kwargs)

    monkeypatch.setattr(clients, "end_idle", race)

    _, outcome = run(resolved())

    assert outcome["ended_count"] == 2
    assert outcome["left_alone"] == 2
    assert {billing[0], billing[1]} <= set(crowd.listed())


def test_never_its_own_connection_even_when_its_name_is_configured(
    redis_server: RedisServer, crowd: Crowd, state: MemoryState
) -> None:
    """A name starting with 'toilless' is refused in settings; the own id is excluded on its own too."""
    with pytest.raises(InvalidInput, match="never ends its own"):
        resolved(kill={"client_names": ["toilless-redis_connections"]})
    own = clients.Client(id=7, name="billing-worker", addr="127.0.0.1:1", idle=99999, age=1, flags="N", cmd="get")
    assert clients.why_not(own, names=["billing-worker"], idle_seconds=1, own_id=7) == "Toilless's own connection"


@pytest.mark.parametrize(
    ("overrides", "params", "message"),
    [
        pytest.param({"kill": {"client_names": ["*"]}}, {}, "unnamed or every client", id="name-star"),
        pytest.param({"kill": {"client_names": [""]}}, {}, "unnamed or every client", id="name-empty"),
        pytest.param({"kill": {"client_names": ["billing*"]}}, {}, "not an exact client name", id="name-glob"),
        pytest.param({"kill": {"client_names": ["a b"]}}, {}, "not an exact client name", id="name-space"),
        pytest.param({"kill": {"idle_seconds": 0}}, {}, "kill.idle_seconds must be", id="idle-zero"),
        pytest.param({"kill": {"max_clients_per_run": 0}}, {}, "kill.max_clients_per_run must be", id="max-zero"),
        pytest.param({"sample_seconds": 0}, {}, "sample_seconds must be", id="sample-zero"),
        pytest.param({"pools": {"api": 0}}, {}, "pools.api", id="pool-zero"),
        pytest.param({}, {"idle_seconds": 0}, "would loosen", id="param-idle-lower"),
        pytest.param({}, {"max_clients_per_run": 500}, "would loosen", id="param-more"),
        pytest.param({}, {"client_names": ["api"]}, "not among the configured", id="param-other-name"),
        pytest.param({"kill": {"allow": False}}, {"allow_kill": True}, "would loosen", id="param-allow"),
    ],
)
def test_bad_input_is_refused_before_anything_is_ended(
    redis_server: RedisServer, crowd: Crowd, overrides: dict[str, Any], params: dict[str, Any], message: str
) -> None:
    crowd.open("billing-worker", 3)
    before = crowd.listed()
    with pytest.raises(InvalidInput) as caught:
        resolved(params, **overrides)
    assert message in str(caught.value)
    assert crowd.listed() == before


def test_resolve_settings_refuses_a_connection_that_is_not_redis(
    set_variable: Callable[[str, Any], None], set_connection: Callable[[str, dict[str, Any]], None]
) -> None:
    set_connection("an_http_api", {"conn_type": "http", "host": "127.0.0.1"})
    set_variable("toilless_redis_connections", {"redis_conn_id": "an_http_api"})
    with pytest.raises(InvalidInput, match="is of type 'http', not 'redis'"):
        steps.resolve_settings({})
