"""redis_connections' pure modules: CLIENT LIST parsing and grouping, who may be ended, the verdict, the validators."""

from __future__ import annotations

from typing import Any

import pytest

from toilless.sops.redis_connections import clients, health
from toilless.sops.redis_connections.settings import RedisConnectionsSettingsError, validate_client_name

LINE = "id={id} addr={addr} laddr=127.0.0.1:6379 fd=8 name={name} age=100 idle={idle} flags={flags} db=0 cmd={cmd}"


def listing(*rows: dict[str, Any]) -> bytes:
    defaults = {"addr": "10.0.0.5:51234", "name": "billing", "idle": 0, "flags": "N", "cmd": "get"}
    return "\n".join(LINE.format(**{**defaults, **row}) for row in rows).encode() + b"\n"


def test_parse_client_list_is_bounded_and_skips_what_it_does_not_understand() -> None:
    raw = listing(*({"id": index} for index in range(1, 6))) + b"garbage line\nid=x addr=1:2\n"
    parsed, total = clients.parse_client_list(raw, limit=3)
    assert [client.id for client in parsed] == [1, 2, 3]
    assert total == 7


@pytest.mark.parametrize(
    ("addr", "host"),
    [
        pytest.param("10.0.0.5:51234", "10.0.0.5", id="ipv4"),
        pytest.param("[::1]:6000", "[::1]", id="ipv6"),
        pytest.param("/tmp/redis.sock:0", "/tmp/redis.sock", id="unix-socket"),
        pytest.param("weird", "weird", id="no-port"),
    ],
)
def test_host_without_port(addr: str, host: str) -> None:
    [client], _ = clients.parse_client_list(listing({"id": 1, "addr": addr}), limit=10)
    assert client.host == host


def test_group_by_name_host_idle_and_command() -> None:
    parsed, _ = clients.parse_client_list(
        listing(
            {"id": 1, "idle": 5},
            {"id": 2, "idle": 700, "cmd": "blpop"},
            {"id": 3, "name": "", "addr": "10.0.0.9:1", "idle": 7200},
        ),
        limit=10,
    )
    groups = clients.group(parsed, top=5)
    assert groups["name"] == [("billing", 2), (clients.UNNAMED, 1)]
    assert groups["host"] == [("10.0.0.5", 2), ("10.0.0.9", 1)]
    assert dict(groups["idle"]) == {"< 10 s": 1, "10 min - 1 h": 1, ">= 1 h": 1}
    assert dict(groups["command"]) == {"get": 2, "blpop": 1}


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        pytest.param({"id": 1, "idle": 900}, None, id="eligible"),
        pytest.param({"id": 99, "idle": 900}, "Toilless's own connection", id="own-id"),
        pytest.param({"id": 1, "idle": 900, "name": "toilless-redis_memory"}, "a Toilless connection", id="toilless"),
        pytest.param({"id": 1, "idle": 900, "name": "api"}, "client name not configured", id="other-name"),
        pytest.param({"id": 1, "idle": 900, "name": ""}, "client name not configured", id="unnamed"),
        pytest.param({"id": 1, "idle": 900, "flags": "S"}, "flags S", id="replica"),
        pytest.param({"id": 1, "idle": 900, "flags": "b"}, "flags b", id="blocked"),
        pytest.param({"id": 1, "idle": 900, "flags": "P"}, "flags P", id="subscriber"),
        pytest.param({"id": 1, "idle": 900, "flags": "x"}, "flags x", id="in-multi"),
        pytest.param({"id": 1, "idle": 10}, "idle 10 s, under 600 s", id="not-idle-enough"),
    ],
)
def test_who_may_be_ended(row: dict[str, Any], reason: str | None) -> None:
    [client], _ = clients.parse_client_list(listing(row), limit=1)
    found = clients.why_not(client, names=["billing"], idle_seconds=600, own_id=99)
    assert found == reason if reason is None else reason in (found or "")


def test_end_idle_stops_at_the_first_refusal_and_settles_each_batch() -> None:
    chosen, _ = clients.parse_client_list(listing(*({"id": i, "idle": 900} for i in range(1, 26))), limit=100)
    by_id = {client.id: client for client in chosen}
    grants = iter([(10, ""), (4, "budget reached")])
    settled: list[tuple[int, int]] = []
    killed: list[int] = []
    result = clients.end_idle(
        chosen,
        authorize=lambda count: next(grants),
        recheck=lambda client_id: None if client_id == 3 else by_id[client_id],
        kill=lambda client_id: killed.append(client_id) or 1,
        settle=lambda reserved, done: settled.append((reserved, done)),
        eligible=lambda client: None,
    )
    assert settled == [(10, 9), (4, 4)]
    assert result["ended_count"] == 13
    assert result["left_alone"] == 1  # closed meanwhile
    assert result["refused"] == "budget reached"
    assert 3 not in killed


THRESHOLDS = {"connected_warning_pct": 80, "connected_critical_pct": 95, "blocked_clients_warning": 5}


@pytest.mark.parametrize(
    ("info", "rejected", "level", "fragment"),
    [
        pytest.param({"connected_clients": 10, "maxclients": 100}, (0, 0), health.OK, "nothing rejected", id="ok"),
        pytest.param({"connected_clients": 85, "maxclients": 100}, (0, 0), health.WARNING, "(85%)", id="warning"),
        pytest.param({"connected_clients": 97, "maxclients": 100}, (0, 0), health.CRITICAL, "about to be", id="crit"),
        pytest.param({"connected_clients": 10, "maxclients": 100}, (5, 9), health.CRITICAL, "rejected per", id="rej"),
        pytest.param({"connected_clients": 10, "maxclients": 100}, (9, 9), health.OK, "9 connection(s)", id="old-rej"),
        pytest.param(
            {"connected_clients": 10, "maxclients": 100, "blocked_clients": 7},
            (0, 0),
            health.WARNING,
            "7 clients",
            id="b",
        ),
    ],
)
def test_connection_assessment(info: dict[str, Any], rejected: tuple[int, int], level: str, fragment: str) -> None:
    measured = health.figures(
        info, {"rejected_connections": rejected[0]}, {"rejected_connections": rejected[1]}, seconds=2.0
    )
    assessment = health.assess(measured, {}, pools={}, thresholds=THRESHOLDS, idle_seconds=600)
    assert assessment["level"] == level
    assert any(fragment in finding for finding in assessment["findings"]), assessment


def test_pool_advice_names_leaks_and_oversized_pools() -> None:
    measured = health.figures({"connected_clients": 90, "maxclients": 100}, {}, {}, seconds=1.0)
    per_name = {
        "billing": {"connections": 40, "idle": 5},
        "api": {"connections": 30, "idle": 28},
        "cron": {"connections": 3, "idle": 0},
    }
    advice = health.assess(
        measured, per_name, pools={"billing": 20, "api": 40}, thresholds=THRESHOLDS, idle_seconds=600
    )["advice"]
    assert any(line.startswith("billing: 40 connections, more than its pool of 20") for line in advice)
    assert any(line.startswith("api: 28 of 30 connections idle") for line in advice)
    assert any("no pool size configured for cron" in line for line in advice)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("*", id="star"),
        pytest.param("", id="empty"),
        pytest.param("bill*", id="glob"),
        pytest.param("a b", id="space"),
        pytest.param("x" * 129, id="too-long"),
        pytest.param("Toilless-redis_memory", id="own"),
        pytest.param(None, id="not-text"),
    ],
)
def test_client_name_validator_refuses(name: Any) -> None:
    with pytest.raises(RedisConnectionsSettingsError):
        validate_client_name(name)
