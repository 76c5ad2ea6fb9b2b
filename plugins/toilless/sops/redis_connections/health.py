"""How close a Redis is to its connection limit, and what to change in the pools. Pure: INFO sections as dicts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

OK, WARNING, CRITICAL = "ok", "warning", "critical"
_RANK = {OK: 0, WARNING: 1, CRITICAL: 2}


def _int(section: Mapping[str, Any], key: str) -> int:
    try:
        return int(section.get(key) or 0)
    except (TypeError, ValueError):
        return 0


def figures(
    clients: Mapping[str, Any], stats_first: Mapping[str, Any], stats_second: Mapping[str, Any], *, seconds: float
) -> dict[str, Any]:
    connected = _int(clients, "connected_clients")
    maxclients = _int(clients, "maxclients")
    rejected_first = _int(stats_first, "rejected_connections")
    rejected_second = _int(stats_second, "rejected_connections")
    return {
        "connected": connected,
        "maxclients": maxclients,
        "connected_pct": 100.0 * connected / maxclients if maxclients else None,
        "blocked": _int(clients, "blocked_clients"),
        "rejected_total": rejected_second,
        "rejected_per_minute": 60.0 * max(0, rejected_second - rejected_first) / seconds if seconds > 0 else 0.0,
        "sample_seconds": round(seconds, 3),
    }


def assess(
    measured: Mapping[str, Any],
    per_name: Mapping[str, Mapping[str, int]],
    *,
    pools: Mapping[str, int],
    thresholds: Mapping[str, Any],
    idle_seconds: int,
) -> dict[str, Any]:
    """The level, the findings behind it, and advice: pool sizes per client name, and what else to look at."""
    level = OK
    findings: list[str] = []
    advice: list[str] = []

    def raise_to(new: str) -> None:
        nonlocal level
        level = new if _RANK[new] > _RANK[level] else level

    pct = measured["connected_pct"]
    usage = f"{measured['connected']:,} of maxclients {measured['maxclients']:,} connections"
    if pct is not None and pct >= float(thresholds["connected_critical_pct"]):
        raise_to(CRITICAL)
        findings.append(f"{usage} ({pct:.0f}%): new connections are about to be refused")
    elif pct is not None and pct >= float(thresholds["connected_warning_pct"]):
        raise_to(WARNING)
        findings.append(f"{usage} ({pct:.0f}%)")
    if measured["rejected_per_minute"] > 0:
        raise_to(CRITICAL)
        findings.append(f"refusing connections now: {measured['rejected_per_minute']:.1f} rejected per minute")
    elif measured["rejected_total"]:
        findings.append(f"{measured['rejected_total']:,} connection(s) rejected since the statistics were reset")
    if measured["blocked"] >= int(thresholds["blocked_clients_warning"]):
        raise_to(WARNING)
        findings.append(f"{measured['blocked']:,} clients blocked (BLPOP, WAIT, ...): check what they wait for")
    for name, row in sorted(per_name.items(), key=lambda item: -item[1]["connections"]):
        pool = pools.get(name)
        if pool is not None and row["connections"] > pool:
            advice.append(
                f"{name}: {row['connections']:,} connections, more than its pool of {pool:,}: a leak (connections "
                "not returned or not closed) or more instances than planned"
            )
        elif pool is not None and row["idle"] > pool // 2 and level != OK:
            advice.append(
                f"{name}: {row['idle']:,} of {row['connections']:,} connections idle >= {idle_seconds} s: a smaller "
                f"pool (configured {pool:,}) or an idle timeout would free them"
            )
    if level != OK:
        unknown = [name for name in per_name if name not in pools][:5]
        if unknown:
            advice.append(
                "no pool size configured for " + ", ".join(unknown) + ": add them to pools to judge their pools"
            )
        advice.append("raise maxclients (and the process's file limit) only if the clients really need more")
        advice.append("set Redis `timeout` so idle connections are closed by the server")
    if not findings:
        findings.append(f"{usage}" + (f" ({pct:.0f}%)" if pct is not None else "") + ", nothing rejected")
    return {"level": level, "findings": findings, "advice": advice}
