"""How full the connection slots are, the breakdowns, and the pool-size advice per application. Pure, no Airflow."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

DIMENSIONS = ("state", "application", "usename", "client", "age")
OK, WARNING, CRITICAL = "ok", "warning", "critical"
#: A pool this busy (active / pool size) is saturated; this idle, oversized.
SATURATED_SHARE = 0.9
IDLE_SHARE = 0.5


def usage(server: Mapping[str, Any], client_sessions: int, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Client sessions against the slots ordinary roles may use: max_connections less the reserved ones."""
    max_connections = int(server["max_connections"])
    superuser_reserved = int(server.get("superuser_reserved_connections") or 0)
    reserved = int(server.get("reserved_connections") or 0)
    available = max(1, max_connections - superuser_reserved - reserved)
    used_pct = 100.0 * client_sessions / available
    level = OK
    if used_pct >= settings["critical_usage_pct"]:
        level = CRITICAL
    elif used_pct >= settings["warning_usage_pct"]:
        level = WARNING
    return {
        "max_connections": max_connections,
        "superuser_reserved_connections": superuser_reserved,
        "reserved_connections": server.get("reserved_connections"),
        "available_to_ordinary_roles": available,
        "client_sessions": client_sessions,
        "free_slots": max(0, available - client_sessions),
        "used_pct": round(used_pct, 1),
        "level": level,
    }


def breakdowns(groups: Iterable[Mapping[str, Any]], *, top: int = 10) -> dict[str, Any]:
    """Counts per state, application, user, client and age bucket (top ``top`` of each, and how many others)."""
    counters = {dimension: Counter() for dimension in DIMENSIONS}
    per_application: dict[str, Counter] = {}
    total = 0
    for group in groups:
        count = int(group["sessions"])
        total += count
        for dimension in DIMENSIONS:
            counters[dimension][str(group[dimension])] += count
        per_application.setdefault(str(group["application"]), Counter())[str(group["state"])] += count
    result: dict[str, Any] = {"total": total}
    for dimension, counter in counters.items():
        shown = counter.most_common(top)
        result[dimension] = [[key, count] for key, count in shown]
        result[f"{dimension}_others"] = sum(counter.values()) - sum(count for _, count in shown)
    result["per_application"] = {name: dict(states) for name, states in per_application.items()}
    return result


def pool_advice(
    per_application: Mapping[str, Mapping[str, int]], pools: Mapping[str, int], *, free_slots: int
) -> list[dict[str, Any]]:
    """Per configured application: its sessions against its pool setting, and what to do about the pool."""
    advice = []
    for application, pool in sorted(pools.items()):
        states = per_application.get(application, {})
        total = sum(states.values())
        active = int(states.get("active", 0))
        idle_in_transaction = sum(int(count) for state, count in states.items() if state.startswith("idle in"))
        idle = int(states.get("idle", 0))
        if total > pool:
            verdict = (
                f"holds {total} connections, more than its pool of {pool}: more instances than planned, or a "
                "connection leak; check its instance count before raising anything"
            )
        elif idle_in_transaction and idle_in_transaction >= max(1, total // 4):
            verdict = (
                f"{idle_in_transaction} of {total} connections idle in a transaction: transactions left open "
                "(a code fix, not a bigger pool)"
            )
        elif active >= SATURATED_SHARE * pool:
            room = f"the server has {free_slots} free slots" if free_slots else "but the server has no free slots"
            verdict = (
                f"pool saturated ({active} active of {pool}): raise the pool size if requests queue for "
                f"connections; {room}"
            )
        elif total and idle >= IDLE_SHARE * pool:
            verdict = f"{idle} of its {pool} pooled connections idle: the pool could shrink and free slots"
        else:
            verdict = "pool size fits"
        advice.append(
            {
                "application": application,
                "pool": pool,
                "sessions": total,
                "active": active,
                "idle": idle,
                "idle_in_transaction": idle_in_transaction,
                "advice": verdict,
            }
        )
    return advice


def pools_vs_capacity(pools: Mapping[str, int], available: int) -> str | None:
    """A warning when the configured pools together can take more slots than ordinary roles have."""
    total = sum(pools.values())
    if total > available:
        return (
            f"the configured pools add up to {total} connections, more than the {available} slots ordinary roles "
            "have: when all are busy, clients get 'too many connections'; use a pooler (PgBouncer) or smaller pools"
        )
    return None
