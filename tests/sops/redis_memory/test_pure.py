"""redis_memory's pure modules: the sampler's bounds, the verdict, the prefix rules; and the shared action budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from toilless.common import action_budget
from toilless.sops.redis_memory import health
from toilless.sops.redis_memory.cleanup import candidates, clean_prefix
from toilless.sops.redis_memory.sampling import OTHER_PREFIXES, SampleLimits, key_prefix, sample_keys, show_key
from toilless.sops.redis_memory.settings import RedisMemorySettingsError, validate_prefix

NOW = datetime.now(UTC).replace(microsecond=0)


def limits(**overrides: Any) -> SampleLimits:
    values = {
        "scan_count": 10,
        "max_keys": 1000,
        "max_seconds": 100.0,
        "top_keys": 3,
        "top_prefixes": 5,
        "max_prefixes_tracked": 100,
        "separator": ":",
        "prefix_depth": 1,
        "idle_seconds": 100,
    }
    return SampleLimits(**{**values, **overrides})


class FakeRedis:
    """SCAN over a list of (key, size, pttl, idle) in batches of ``count``; a clock that ticks per SCAN."""

    def __init__(self, keys: list[tuple[bytes, int, int, int]], seconds_per_scan: float = 0.0) -> None:
        self.keys = {key: (size, pttl, idle) for key, size, pttl, idle in keys}
        self.order = [key for key, *_ in keys]
        self.now = 0.0
        self.seconds_per_scan = seconds_per_scan
        self.scans = 0

    def scan(self, cursor: int, count: int, match: bytes | None = None) -> tuple[int, list[bytes]]:
        self.scans += 1
        self.now += self.seconds_per_scan
        batch = self.order[cursor : cursor + count]
        if match is not None:
            batch = [key for key in batch if key.startswith(match.rstrip(b"*"))]
        following = cursor + count
        return (0 if following >= len(self.order) else following), batch

    def facts(self, keys: list[bytes]) -> list[tuple[Any, ...]]:
        return [self.keys[key] for key in keys]

    def clock(self) -> float:
        return self.now


def family(prefix: str, count: int, *, size: int = 100, pttl: int = -1, idle: int = 1000) -> list[tuple]:
    return [(f"{prefix}{index}".encode(), size, pttl, idle) for index in range(count)]


@pytest.mark.parametrize(
    ("key", "depth", "expected"),
    [
        pytest.param(b"session:123", 1, b"session:", id="one-segment"),
        pytest.param(b"app:users:1", 2, b"app:users:", id="two-segments"),
        pytest.param(b"app:1", 2, None, id="not-enough-segments"),
        pytest.param(b"plainkey", 1, None, id="no-separator"),
        pytest.param(b"\xff\xfe:x", 1, b"\xff\xfe:", id="binary-key"),
    ],
)
def test_key_prefix(key: bytes, depth: int, expected: bytes | None) -> None:
    assert key_prefix(key, b":", depth) == expected


def test_show_key_escapes_bytes_and_shortens() -> None:
    assert show_key(b"\xff:a") == "\\xff:a"
    assert len(show_key(b"k" * 500)) == 120


def test_sample_finds_the_biggest_keys_and_groups_keys_without_ttl_by_prefix() -> None:
    redis = FakeRedis(
        family("session:", 30, idle=5000)
        + family("cache:", 20, pttl=1000)
        + [(b"blob:1", 10_000, -1, 0), (b"blob:2", 9_000, -1, 0), (b"nosep", 50, -1, 0)]
    )
    sample = sample_keys(redis.scan, redis.facts, limits(), with_idle=True, clock=redis.clock)
    assert sample["complete"]
    assert sample["keys_sampled"] == 53
    assert [key["key"] for key in sample["biggest_keys"]][:2] == ["blob:1", "blob:2"]
    assert sample["biggest_keys"][2]["bytes"] == 100
    by_prefix = {row["prefix"]: row for row in sample["prefixes"]}
    assert by_prefix["session:"]["no_ttl_keys"] == 30
    assert by_prefix["session:"]["idle_no_ttl_keys"] == 30
    assert by_prefix["cache:"]["no_ttl_keys"] == 0
    assert by_prefix["(no separator)"]["keys"] == 1


@pytest.mark.parametrize(
    ("overrides", "seconds_per_scan", "stopped_by", "sampled"),
    [
        pytest.param({"max_keys": 35}, 0.0, "key cap", 35, id="key-cap"),
        pytest.param({"max_seconds": 2.5}, 1.0, "time cap", 30, id="time-cap"),
        pytest.param({}, 0.0, "complete", 100, id="complete"),
    ],
)
def test_sample_stops_at_its_caps(
    overrides: dict[str, Any], seconds_per_scan: float, stopped_by: str, sampled: int
) -> None:
    redis = FakeRedis(family("k:", 100), seconds_per_scan=seconds_per_scan)
    sample = sample_keys(redis.scan, redis.facts, limits(**overrides), with_idle=True, clock=redis.clock)
    assert sample["stopped_by"] == stopped_by
    assert sample["keys_sampled"] == sampled


def test_sample_tracks_a_bounded_number_of_prefixes() -> None:
    redis = FakeRedis([(f"p{index}:x".encode(), 10, -1, 0) for index in range(50)])
    sample = sample_keys(redis.scan, redis.facts, limits(max_prefixes_tracked=10), with_idle=True, clock=redis.clock)
    other = [row for row in sample["prefixes"] if row["prefix"] == OTHER_PREFIXES]
    assert other
    assert other[0]["keys"] == 40
    assert len(sample["prefixes"]) == 6  # top 5 + the rest


def test_candidates_need_no_ttl_and_enough_idle_time() -> None:
    keys = [b"a", b"b", b"c", b"d"]
    facts = [(None, -1, 500), (None, 1000, 500), (None, -1, 5), (None, -1, None)]
    assert candidates(keys, facts, 100) == [b"a"]


def test_clean_prefix_stops_acting_on_refusal_but_counts_the_candidates() -> None:
    redis = FakeRedis(family("s:", 100))
    acted: list[bytes] = []
    result = clean_prefix(
        "s:",
        cleanup={"batch_size": 10, "idle_seconds": 100, "scan_max_keys": 1000, "scan_max_seconds": 100},
        scan=redis.scan,
        facts=redis.facts,
        authorize=lambda count: (0, "dry run: would act"),
        act=lambda keys: acted.extend(keys) or list(keys),
        settle=lambda reserved, done: None,
        scan_count=10,
        clock=redis.clock,
    )
    assert acted == []
    assert result["candidates"] == 100
    assert result["acted"] == 0
    assert result["stopped_by"] == "scan complete; dry run: would act"


@pytest.mark.parametrize(
    ("memory", "evicted", "errorstats", "level", "fragment"),
    [
        pytest.param({"used_memory": 50, "maxmemory": 100}, (0, 0), {}, health.OK, "0.0 MiB used", id="ok"),
        pytest.param({"used_memory": 85, "maxmemory": 100}, (0, 0), {}, health.WARNING, "85.0%", id="warning"),
        pytest.param({"used_memory": 99, "maxmemory": 100}, (0, 0), {}, health.CRITICAL, "99.0%", id="critical"),
        pytest.param({"used_memory": 50, "maxmemory": 0}, (0, 0), {}, health.WARNING, "no maxmemory", id="no-max"),
        pytest.param({"used_memory": 50, "maxmemory": 100}, (0, 100), {}, health.WARNING, "evicting", id="evicting"),
        pytest.param(
            {"used_memory": 50, "maxmemory": 100},
            (0, 0),
            {"errorstat_OOM": {"count": 3}},
            health.CRITICAL,
            "3 write(s) refused with OOM",
            id="oom-errors",
        ),
        pytest.param(
            {"used_memory": 200 << 20, "maxmemory": 1 << 30, "mem_fragmentation_ratio": 2.1},
            (0, 0),
            {},
            health.WARNING,
            "fragmentation ratio 2.10",
            id="fragmented",
        ),
    ],
)
def test_memory_assessment(
    memory: dict[str, Any], evicted: tuple[int, int], errorstats: dict[str, Any], level: str, fragment: str
) -> None:
    thresholds = {
        "used_memory_warning_pct": 80,
        "used_memory_critical_pct": 95,
        "evictions_per_second_warning": 10,
        "fragmentation_ratio_warning": 1.5,
        "fragmentation_min_used_bytes": 100 << 20,
    }
    figures = health.figures(
        {"maxmemory_policy": "allkeys-lru", **memory},
        {"evicted_keys": evicted[0]},
        {"evicted_keys": evicted[1]},
        {"db0": {"keys": 10, "expires": 5}},
        errorstats,
        seconds=2.0,
    )
    assessment = health.assess(figures, thresholds)
    assert assessment["level"] == level
    assert any(fragment in finding for finding in assessment["findings"]), assessment


@pytest.mark.parametrize(
    "prefix",
    [
        pytest.param("*", id="star"),
        pytest.param("", id="empty"),
        pytest.param(" ", id="blank"),
        pytest.param("a*", id="glob-star"),
        pytest.param("a?", id="glob-question"),
        pytest.param("a[b]", id="glob-class"),
        pytest.param("a\\", id="backslash"),
        pytest.param("a\nb", id="control"),
        pytest.param("x" * 201, id="too-long"),
        pytest.param(5, id="not-text"),
    ],
)
def test_prefix_validator_refuses(prefix: Any) -> None:
    with pytest.raises(RedisMemorySettingsError):
        validate_prefix(prefix)


def test_prefix_validator_accepts_literal_text() -> None:
    assert validate_prefix("session:") == "session:"


def test_action_budget_holds_across_tries_and_gives_back_what_was_not_done() -> None:
    keep = timedelta(hours=24)
    entry = action_budget.reserve({}, "run-a", 40, now=NOW, keep=keep)
    entry = action_budget.settle(entry, "run-a", reserved=40, done=30)
    assert action_budget.remaining(entry, "run-a", 50) == 20
    # A crash after the reservation: nothing settled, the retry sees it spent.
    entry = action_budget.reserve(entry, "run-a", 20, now=NOW + timedelta(minutes=1), keep=keep)
    assert action_budget.remaining(entry, "run-a", 50) == 0
    # Another run has its own budget, and sees run-a in the gate history once (per run, not per batch).
    assert action_budget.remaining(entry, "run-b", 50) == 50
    history = action_budget.gate_history(entry, "run-b", now=NOW + timedelta(minutes=2))
    assert history.recent_actions == (NOW,)
    assert action_budget.gate_history(entry, "run-a", now=NOW + timedelta(minutes=2)).recent_actions == ()


def test_action_budget_treats_an_unreadable_count_as_spent() -> None:
    assert action_budget.remaining({"runs": {"r": {"spent": "junk"}}}, "r", 10) == 0


@pytest.mark.parametrize(
    ("configured", "param", "expected"),
    [
        pytest.param(True, False, True, id="config-dry-param-off-stays-dry"),
        pytest.param(True, None, True, id="config-dry"),
        pytest.param(False, True, True, id="param-asks-for-dry-run"),
        pytest.param(False, None, False, id="acting"),
    ],
)
def test_a_run_can_ask_for_a_dry_run_never_switch_the_configured_one_off(
    configured: bool, param: bool | None, expected: bool
) -> None:
    from toilless.common.config import read_defaults
    from toilless.sops.redis_connections import settings as connections_settings
    from toilless.sops.redis_memory import settings as memory_settings

    for module, dag_id in ((memory_settings, "redis_memory"), (connections_settings, "redis_connections")):
        config = read_defaults(dag_id)
        config["dry_run"] = configured
        assert module.resolve(config, {"dry_run": param})["dry_run"] is expected
