"""Bounded key sampling: the biggest keys, and keys without TTL grouped by prefix, from one SCAN pass.

A Redis under memory pressure may hold hundreds of millions of keys: the pass is capped by the number of keys looked
at and by time (checked after every SCAN batch, and a batch is bounded by SCAN's COUNT), and what it keeps is bounded
too (the top N keys in a heap, at most ``max_prefixes_tracked`` prefixes; the rest are counted under
:data:`OTHER_PREFIXES`). Keys are bytes and may be anything: shown with ``backslashreplace`` and shortened.

Pure: Redis is reached through the two callables given (``scan`` and ``facts``, the hook's methods in production).
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

OTHER_PREFIXES = "(other prefixes)"
NO_SEPARATOR = "(no separator)"
MAX_KEY_SHOWN = 120

#: ``scan(cursor, count) -> (next_cursor, keys)``
Scan = Callable[[int, int], tuple[int, list[bytes]]]
#: ``facts(keys) -> [(memory_usage or None, pttl, idle seconds or None), ...]``
Facts = Callable[[Sequence[bytes]], list[tuple[Any, ...]]]


@dataclass(frozen=True)
class SampleLimits:
    scan_count: int
    max_keys: int
    max_seconds: float
    top_keys: int
    top_prefixes: int
    max_prefixes_tracked: int
    separator: str
    prefix_depth: int
    #: A key without TTL idle at least this long is counted as a cleanup candidate.
    idle_seconds: int

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> SampleLimits:
        sampling = settings["sampling"]
        return cls(
            scan_count=int(sampling["scan_count"]),
            max_keys=int(sampling["max_keys"]),
            max_seconds=float(sampling["max_seconds"]),
            top_keys=int(sampling["top_keys"]),
            top_prefixes=int(sampling["top_prefixes"]),
            max_prefixes_tracked=int(sampling["max_prefixes_tracked"]),
            separator=str(sampling["prefix_separator"]),
            prefix_depth=int(sampling["prefix_depth"]),
            idle_seconds=int(settings["cleanup"]["idle_seconds"]),
        )


def show_key(key: bytes | str) -> str:
    """A key as text for a report: undecodable bytes escaped, shortened."""
    text = key.decode("utf-8", "backslashreplace") if isinstance(key, bytes) else str(key)
    return text if len(text) <= MAX_KEY_SHOWN else text[: MAX_KEY_SHOWN - 1] + "…"


def key_prefix(key: bytes, separator: bytes, depth: int) -> bytes | None:
    """The first ``depth`` segments of ``key`` and their separators (``b"session:"``); None without enough of them."""
    parts = key.split(separator, depth)
    if len(parts) <= depth:
        return None
    return separator.join(parts[:depth]) + separator


@dataclass
class _PrefixStats:
    keys: int = 0
    bytes: int = 0
    no_ttl_keys: int = 0
    no_ttl_bytes: int = 0
    idle_no_ttl_keys: int = 0
    max_idle_seconds: int = 0

    def add(self, size: int, pttl: Any, idle: Any, idle_threshold: int) -> None:
        self.keys += 1
        self.bytes += size
        if pttl == -1:
            self.no_ttl_keys += 1
            self.no_ttl_bytes += size
            if isinstance(idle, int):
                self.max_idle_seconds = max(self.max_idle_seconds, idle)
                if idle >= idle_threshold:
                    self.idle_no_ttl_keys += 1


def sample_keys(
    scan: Scan,
    facts: Facts,
    limits: SampleLimits,
    *,
    with_idle: bool,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """One bounded SCAN pass; returns the biggest keys, per-prefix figures and how far the pass got (JSON-able)."""
    started = clock()
    separator = limits.separator.encode()
    biggest: list[tuple[int, bytes]] = []  # a min-heap of the top_keys biggest
    prefixes: dict[bytes | None, _PrefixStats] = {}
    other = _PrefixStats()
    seen = 0
    cursor = 0
    stopped_by = "complete"
    while True:
        cursor, keys = scan(cursor, limits.scan_count)
        keys = keys[: limits.max_keys - seen]
        for key, (size, pttl, idle) in zip(keys, facts(keys), strict=True):
            if pttl == -2 or size is None:
                continue  # gone since SCAN returned it
            seen += 1
            size = int(size)
            if len(biggest) < limits.top_keys:
                heapq.heappush(biggest, (size, key))
            elif size > biggest[0][0]:
                heapq.heapreplace(biggest, (size, key))
            prefix = key_prefix(key, separator, limits.prefix_depth)
            stats = prefixes.get(prefix)
            if stats is None:
                if len(prefixes) < limits.max_prefixes_tracked:
                    stats = prefixes[prefix] = _PrefixStats()
                else:
                    stats = other
            stats.add(size, pttl, idle, limits.idle_seconds)
        if cursor == 0:
            break
        if seen >= limits.max_keys:
            stopped_by = "key cap"
            break
        if clock() - started >= limits.max_seconds:
            stopped_by = "time cap"
            break
    elapsed = clock() - started
    ranked = sorted(prefixes.items(), key=lambda item: (-item[1].no_ttl_bytes, -item[1].bytes))
    shown = [
        {"prefix": NO_SEPARATOR if prefix is None else show_key(prefix), **vars(stats)}
        for prefix, stats in ranked[: limits.top_prefixes]
    ]
    if other.keys:
        shown.append({"prefix": OTHER_PREFIXES, **vars(other)})
    return {
        "keys_sampled": seen,
        "complete": stopped_by == "complete",
        "stopped_by": stopped_by,
        "seconds": round(elapsed, 3),
        "with_idle": with_idle,
        "biggest_keys": [{"key": show_key(key), "bytes": size} for size, key in sorted(biggest, reverse=True)],
        "prefixes": shown,
        "prefixes_seen": len(prefixes) + (1 if other.keys else 0),
        "prefixes_cut": max(0, len(ranked) - limits.top_prefixes),
    }
