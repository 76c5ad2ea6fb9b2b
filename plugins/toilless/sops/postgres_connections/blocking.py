"""Lock chains from ``pg_blocking_pids``: who blocks whom, and which sessions are at the root. Pure, no Airflow."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def blocking_chains(rows: Iterable[Mapping[str, Any]], *, limit: int = 10) -> list[dict[str, Any]]:
    """Root blockers (blocking others, not blocked themselves; or the lowest pid of a deadlock-like cycle), each with
    how many sessions wait behind it (directly or down the chain) and the longest chain's depth, worst first."""
    info: dict[int, Mapping[str, Any]] = {}
    blocked_by: dict[int, set[int]] = {}
    for row in rows:
        pid = int(row["pid"])
        info[pid] = row
        blockers = {int(blocker) for blocker in (row.get("blocked_by") or []) if int(blocker) != pid}
        if blockers:
            blocked_by[pid] = blockers
    blocks: dict[int, set[int]] = {}
    for waiter, blockers in blocked_by.items():
        for blocker in blockers:
            blocks.setdefault(blocker, set()).add(waiter)
    roots = [pid for pid in blocks if pid not in blocked_by]
    # A cycle has no root: take its lowest pid so it is still reported.
    seen_from_roots = set().union(*(_behind(root, blocks)[0] for root in roots)) if roots else set()
    for pid in sorted(blocks):
        if pid not in roots and pid not in seen_from_roots:
            roots.append(pid)
            seen_from_roots |= _behind(pid, blocks)[0]
    chains = []
    for root in roots:
        waiting, depth = _behind(root, blocks)
        row = info.get(root, {})
        chains.append(
            {
                "pid": root,
                "waiting": len(waiting - {root}),
                "direct": len(blocks.get(root, ())),
                "depth": depth,
                "state": row.get("state"),
                "usename": row.get("usename"),
                "application_name": row.get("application_name"),
                "xact_seconds": row.get("xact_seconds"),
                "query": row.get("query") or "",
            }
        )
    chains.sort(key=lambda chain: (-chain["waiting"], -chain["depth"], chain["pid"]))
    return chains[:limit]


def _behind(root: int, blocks: Mapping[int, set[int]]) -> tuple[set[int], int]:
    """Every pid waiting behind ``root`` (transitively) and the depth of the longest chain (cycle-safe)."""
    seen = {root}
    frontier = [root]
    depth = 0
    while frontier:
        following = [waiter for pid in frontier for waiter in blocks.get(pid, ()) if waiter not in seen]
        if not following:
            break
        seen.update(following)
        frontier = following
        depth += 1
    return seen, depth
