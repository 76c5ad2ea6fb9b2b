"""How much memory pressure a Redis is under, from ``INFO memory|stats|keyspace|errorstats``: the level and advice.

Pure: the INFO sections come in as the dicts redis-py parses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

OK, WARNING, CRITICAL = "ok", "warning", "critical"
#: Under these policies Redis does not track idle time (OBJECT IDLETIME fails): idle keys cannot be told apart.
LFU_POLICIES = ("allkeys-lfu", "volatile-lfu")


@dataclass(frozen=True)
class MemoryFigures:
    used_bytes: int
    maxmemory_bytes: int
    policy: str
    fragmentation_ratio: float
    rss_bytes: int
    evicted_keys: int
    evictions_per_second: float
    sample_seconds: float
    keys: int
    keys_with_ttl: int
    oom_errors: int

    @property
    def used_pct(self) -> float | None:
        return 100.0 * self.used_bytes / self.maxmemory_bytes if self.maxmemory_bytes else None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "used_pct": self.used_pct}


def _int(section: Mapping[str, Any], key: str) -> int:
    try:
        return int(section.get(key) or 0)
    except (TypeError, ValueError):
        return 0


def oom_errors(errorstats: Mapping[str, Any]) -> int:
    """``errorstat_OOM:count=N`` (Redis 6.2+): writes refused for lack of memory since the last stats reset."""
    value = errorstats.get("errorstat_OOM")
    if isinstance(value, Mapping):
        return _int(value, "count")
    return 0


def figures(
    memory: Mapping[str, Any],
    stats_first: Mapping[str, Any],
    stats_second: Mapping[str, Any],
    keyspace: Mapping[str, Any],
    errorstats: Mapping[str, Any],
    *,
    seconds: float,
) -> MemoryFigures:
    """The figures the verdict needs; the eviction rate from two INFO stats samples ``seconds`` apart."""
    evicted_first = _int(stats_first, "evicted_keys")
    evicted_second = _int(stats_second, "evicted_keys")
    keys = sum(_int(db, "keys") for db in keyspace.values() if isinstance(db, Mapping))
    expires = sum(_int(db, "expires") for db in keyspace.values() if isinstance(db, Mapping))
    try:
        fragmentation = float(memory.get("mem_fragmentation_ratio") or 0.0)
    except (TypeError, ValueError):
        fragmentation = 0.0
    return MemoryFigures(
        used_bytes=_int(memory, "used_memory"),
        maxmemory_bytes=_int(memory, "maxmemory"),
        policy=str(memory.get("maxmemory_policy") or "unknown"),
        fragmentation_ratio=fragmentation,
        rss_bytes=_int(memory, "used_memory_rss"),
        evicted_keys=evicted_second,
        evictions_per_second=max(0, evicted_second - evicted_first) / seconds if seconds > 0 else 0.0,
        sample_seconds=seconds,
        keys=keys,
        keys_with_ttl=expires,
        oom_errors=oom_errors(errorstats),
    )


def assess(measured: MemoryFigures, thresholds: Mapping[str, Any]) -> dict[str, Any]:
    """The level (ok / warning / critical), the findings behind it and what to do about them."""
    level = OK
    findings: list[str] = []
    advice: list[str] = []

    def raise_to(new: str) -> None:
        nonlocal level
        if (level, new) in ((OK, WARNING), (OK, CRITICAL), (WARNING, CRITICAL)):
            level = new

    used_pct = measured.used_pct
    if used_pct is None:
        raise_to(WARNING)
        findings.append(
            f"no maxmemory set: Redis uses {_mib(measured.used_bytes)} and may grow until the host runs out of memory"
        )
        advice.append("set maxmemory (and a maxmemory-policy) below the host's memory")
    elif used_pct >= float(thresholds["used_memory_critical_pct"]):
        raise_to(CRITICAL)
        findings.append(
            f"{used_pct:.1f}% of maxmemory used ({_mib(measured.used_bytes)} of {_mib(measured.maxmemory_bytes)})"
        )
    elif used_pct >= float(thresholds["used_memory_warning_pct"]):
        raise_to(WARNING)
        findings.append(
            f"{used_pct:.1f}% of maxmemory used ({_mib(measured.used_bytes)} of {_mib(measured.maxmemory_bytes)})"
        )
    if used_pct is not None and used_pct >= float(thresholds["used_memory_warning_pct"]):
        if measured.policy == "noeviction":
            findings.append("maxmemory-policy is noeviction: writes fail with OOM once maxmemory is reached")
        advice.append("scale: raise maxmemory or move to a bigger node if the data is needed")
    if measured.oom_errors:
        raise_to(CRITICAL)
        findings.append(f"{measured.oom_errors} write(s) refused with OOM since the statistics were last reset")
    if measured.evictions_per_second >= float(thresholds["evictions_per_second_warning"]):
        raise_to(WARNING)
        findings.append(
            f"evicting {measured.evictions_per_second:.1f} keys/s (policy {measured.policy}): data is being dropped"
        )
    if measured.fragmentation_ratio >= float(thresholds["fragmentation_ratio_warning"]) and measured.used_bytes >= int(
        thresholds["fragmentation_min_used_bytes"]
    ):
        raise_to(WARNING)
        findings.append(
            f"memory fragmentation ratio {measured.fragmentation_ratio:.2f} (RSS {_mib(measured.rss_bytes)})"
        )
        advice.append("enable activedefrag, or restart a replica and fail over, to give fragmented memory back")
    if measured.keys and measured.keys_with_ttl < measured.keys:
        share = 100.0 * (measured.keys - measured.keys_with_ttl) / measured.keys
        if share >= 50 and level != OK:
            advice.append(f"{share:.0f}% of keys have no TTL: give caches and sessions an expiry")
    if not findings:
        findings.append(
            f"{_mib(measured.used_bytes)} used"
            + (f" ({used_pct:.1f}% of maxmemory)" if used_pct is not None else "")
            + f", {measured.evictions_per_second:.1f} evictions/s, fragmentation {measured.fragmentation_ratio:.2f}"
        )
    return {"level": level, "findings": findings, "advice": advice}


def idle_time_tracked(policy: str) -> bool:
    return policy not in LFU_POLICIES


def _mib(value: int) -> str:
    return f"{value / 1048576:.1f} MiB"
