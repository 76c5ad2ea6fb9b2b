"""The cleanup of idle keys without TTL under the configured prefixes: whether to clean at all, and the batch loop.

Candidates are found with ``SCAN MATCH <prefix>*`` (the prefix is literal: settings refuse glob characters), bounded
by keys looked at and by time, and pre-filtered with ``PTTL`` / ``OBJECT IDLETIME``. Each batch is then authorised
(the budget across retries and the action gate, in ``steps``) and handed to one Lua script that re-checks every key
(still without TTL, still idle, still under an allowed prefix) and acts only on those: a key that got a TTL or was
read since it was chosen is left alone.

Pure: Redis, the gate and the run state are reached through the callables given.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from toilless.sops.redis_memory.health import OK, idle_time_tracked
from toilless.sops.redis_memory.sampling import Facts, show_key

#: Examples of keys acted on, per prefix, in the report.
EXAMPLES = 5

#: ``scan(cursor, count, match) -> (next_cursor, keys)``
MatchScan = Callable[[int, int, bytes], tuple[int, list[bytes]]]
#: ``authorize(count) -> (allowed count, reason)``: 0 stops the cleanup (budget spent, gate refused).
Authorize = Callable[[int], tuple[int, str]]
#: ``act(keys) -> keys acted on``
Act = Callable[[Sequence[bytes]], list[bytes]]
#: ``settle(reserved, done)``
Settle = Callable[[int, int], None]


def cleanup_plan(settings: Mapping[str, Any], assessment: Mapping[str, Any], policy: str) -> tuple[bool, str]:
    """Whether this run looks for keys to clean up, and why (or why not)."""
    cleanup = settings["cleanup"]
    if not cleanup["allow"]:
        return False, "cleanup switched off (cleanup.allow, or the run's Param allow_cleanup)"
    if not cleanup["prefixes"]:
        return False, "no cleanup prefixes configured (cleanup.prefixes): report only"
    if cleanup["when"] == "pressure" and assessment["level"] == OK:
        return False, "no memory pressure: cleanup runs only under pressure (cleanup.when)"
    if not idle_time_tracked(policy):
        return False, f"maxmemory-policy {policy} does not track idle time: idle keys cannot be told apart"
    return True, f"{cleanup['action']} keys without TTL idle at least {cleanup['idle_seconds']} s under " + ", ".join(
        cleanup["prefixes"]
    )


def candidates(keys: Sequence[bytes], facts: list[tuple[Any, ...]], min_idle_seconds: int) -> list[bytes]:
    """The keys that have no TTL (PTTL -1) and have been idle at least ``min_idle_seconds``."""
    return [
        key
        for key, (_, pttl, idle) in zip(keys, facts, strict=True)
        if pttl == -1 and isinstance(idle, int) and idle >= min_idle_seconds
    ]


def clean_prefix(
    prefix: str,
    *,
    cleanup: Mapping[str, Any],
    scan: MatchScan,
    facts: Facts,
    authorize: Authorize,
    act: Act,
    settle: Settle,
    scan_count: int,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Clean up one prefix in batches until the scan ends or a cap is hit.

    Once ``authorize`` refuses (dry run, the gate, the budget spent), nothing more is acted on; the scan goes on
    within its caps so the report still says how many keys would have been candidates.
    """
    started = clock()
    match = prefix.encode() + b"*"
    batch_size = int(cleanup["batch_size"])
    min_idle = int(cleanup["idle_seconds"])
    max_keys = int(cleanup["scan_max_keys"])
    max_seconds = float(cleanup["scan_max_seconds"])
    result: dict[str, Any] = {"prefix": prefix, "scanned": 0, "candidates": 0, "acted": 0, "left_alone": 0}
    examples: list[str] = []
    pending: list[bytes] = []
    refused: str | None = None

    def flush(final: bool) -> str | None:
        """Act on full batches (all that is left when ``final``); the reason acting stopped, or None."""
        while pending and (final or len(pending) >= batch_size):
            requested = min(batch_size, len(pending))
            allowed, reason = authorize(requested)
            if allowed <= 0:
                return reason
            batch = pending[:allowed]
            del pending[:allowed]
            # Not settled when the script fails: an answer lost after Redis ran it must still count as spent.
            done = act(batch)
            settle(len(batch), len(done))
            result["acted"] += len(done)
            result["left_alone"] += len(batch) - len(done)
            examples.extend(show_key(key) for key in done[: max(0, EXAMPLES - len(examples))])
            if allowed < requested:
                return reason
        return None

    cursor = 0
    scan_end = "scan complete"
    while True:
        cursor, keys = scan(cursor, scan_count, match)
        keys = keys[: max_keys - result["scanned"]]
        result["scanned"] += len(keys)
        if keys:
            chosen = candidates(keys, facts(keys), min_idle)
            result["candidates"] += len(chosen)
            if refused is None:
                pending.extend(chosen)
                refused = flush(final=False)
                if refused:
                    pending.clear()
        if cursor == 0:
            break
        if result["scanned"] >= max_keys:
            scan_end = "scan key cap"
            break
        if clock() - started >= max_seconds:
            scan_end = "scan time cap"
            break
    if refused is None:
        refused = flush(final=True)
    result["stopped_by"] = f"{scan_end}; {refused}" if refused else scan_end
    result["refused"] = refused
    result["examples"] = examples
    result["seconds"] = round(clock() - started, 3)
    return result
