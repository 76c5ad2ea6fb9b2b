"""Test data for redis_memory on a real Redis: key families with chosen idle times, and a keyspace digest.

Idle times are set with ``RESTORE ... IDLETIME`` (no waiting). The digest reads nothing that touches a key (SCAN,
PTTL, OBJECT IDLETIME, DEBUG DIGEST-VALUE), so taking it changes no idle time.
"""

from __future__ import annotations

import hashlib
from typing import Any

DAY = 86400
#: Families: name -> (count, has TTL, idle seconds). Only "session:" is configured for cleanup in these tests.
FAMILIES = {
    "session:": (120, False, 10 * DAY),  # the candidates
    "session:fresh:": (15, False, 0),  # under the prefix, but used recently
    "session:ttl:": (15, True, 10 * DAY),  # under the prefix, idle, but already expiring
    "cache:": (60, False, 10 * DAY),  # idle without TTL, but not a configured prefix
    "sessionx": (10, False, 10 * DAY),  # starts like the prefix, without its separator
}
CONFIGURED = ["session:"]


def fill(client: Any, families: dict[str, tuple[int, bool, int]] = FAMILIES) -> None:
    """Write each family's keys (small strings), then give them their idle times."""
    pipe = client.pipeline(transaction=False)
    for prefix, (count, with_ttl, _) in families.items():
        for index in range(count):
            pipe.set(f"{prefix}{index}", b"v" * 64, ex=30 * DAY if with_ttl else None)
    pipe.execute()
    for prefix, (count, _, idle) in families.items():
        if idle:
            make_idle(client, [f"{prefix}{index}".encode() for index in range(count)], idle)


def make_idle(client: Any, keys: list[bytes], seconds: int) -> None:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.dump(key)
        pipe.pttl(key)
    answers = pipe.execute()
    pipe = client.pipeline(transaction=False)
    for index, key in enumerate(keys):
        dumped, pttl = answers[2 * index], answers[2 * index + 1]
        pipe.restore(key, max(0, pttl), dumped, replace=True, idletime=seconds)
    pipe.execute()


def candidates(families: dict[str, tuple[int, bool, int]] = FAMILIES) -> set[bytes]:
    count = families["session:"][0]
    return {f"session:{index}".encode() for index in range(count)}


def digest(client: Any, *, outside: list[str] | None = None, with_idle: bool = True) -> dict[str, Any]:
    """Per key: value digest, TTL or not, idle at least a day. ``outside``: only keys under none of these prefixes."""
    rows = []
    for key in sorted(client.scan_iter(count=1000)):
        if outside is not None and any(key.startswith(prefix.encode()) for prefix in outside):
            continue
        value = client.execute_command("DEBUG", "DIGEST-VALUE", key)
        pttl = client.pttl(key)
        # Under an LFU policy Redis refuses OBJECT IDLETIME.
        idle = client.object("idletime", key) >= DAY if with_idle else None
        rows.append((key, value, pttl == -1, idle))
    return {"keys": len(rows), "sha256": hashlib.sha256(repr(rows).encode()).hexdigest(), "rows": rows}
