"""Demo problems for the Redis SOPs in ``make run``: memory pressure with idle keys without TTL, and a connection
pool that leaks idle connections toward maxclients."""

from __future__ import annotations

import contextlib
from typing import Any

DAY = 86400
#: The memory demo: (prefix, count, value bytes, TTL seconds or None, idle seconds).
MEMORY_FAMILIES = (
    ("session:", 20_000, 256, None, 10 * DAY),  # abandoned sessions: no TTL, idle for days (the cleanup's target)
    ("session:", 2_000, 256, None, 0),  # live sessions (numbered after the abandoned ones)
    ("cache:page:", 5_000, 512, 3600, 0),  # a cache that expires as it should
    ("feature:", 50, 64, None, 0),  # configuration without TTL, in use
)
#: used_memory / maxmemory after seeding: over the 80% warning, under the 95% critical.
MEMORY_FILL = 0.9


def seed_memory_pressure(client: Any) -> dict[str, Any]:
    """Write the demo keys, make the abandoned ones idle, add one big key, and set maxmemory so 90% is used."""
    client.flushdb()
    client.config_set("maxmemory", "0")
    client.config_set("maxmemory-policy", "noeviction")
    offsets: dict[str, int] = {}
    for prefix, count, size, ttl, idle in MEMORY_FAMILIES:
        start = offsets.get(prefix, 0)
        offsets[prefix] = start + count
        keys = [f"{prefix}{index}".encode() for index in range(start, start + count)]
        for chunk in range(0, len(keys), 1000):
            pipe = client.pipeline(transaction=False)
            for key in keys[chunk : chunk + 1000]:
                pipe.set(key, b"x" * size, ex=ttl)
            pipe.execute()
        if idle:
            for chunk in range(0, len(keys), 1000):
                pipe = client.pipeline(transaction=False)
                for key in keys[chunk : chunk + 1000]:
                    pipe.dump(key)
                dumped = pipe.execute()
                pipe = client.pipeline(transaction=False)
                for key, value in zip(keys[chunk : chunk + 1000], dumped, strict=True):
                    pipe.restore(key, 0, value, replace=True, idletime=idle)
                pipe.execute()
    # One big key: a 4 MiB report blob nobody reads, appended in small pieces: one 4 MiB SET would sit in the
    # connection's query buffer (counted in used_memory) for a while, and maxmemory below would be set too high.
    client.delete("report:2026:full")
    for _ in range(64):
        client.append("report:2026:full", b"r" * 65536)
    used = int(client.info("memory")["used_memory"])
    maxmemory = int(used / MEMORY_FILL)
    client.config_set("maxmemory", str(maxmemory))
    return {"keys": int(client.dbsize()), "used_bytes": used, "maxmemory_bytes": maxmemory}


class ConnectionLeak:
    """A pool that leaks: connections named ``billing-worker`` opened and never used again, plus a few ``api`` ones."""

    def __init__(self, server: Any, *, leaked: int = 45, healthy: int = 5, maxclients: int = 60) -> None:
        self.server = server
        self.leaked = leaked
        self.healthy = healthy
        self.maxclients = maxclients
        self.clients: list[Any] = []

    def start(self) -> None:
        with self.server.client() as admin:
            admin.config_set("maxclients", str(self.maxclients))
        for name, count in (("billing-worker", self.leaked), ("api", self.healthy)):
            for _ in range(count):
                client = self.server.client(client_name=name, single_connection_client=True)
                client.ping()
                self.clients.append(client)

    def stop(self) -> None:
        for client in self.clients:
            # The server may be gone already (the Redis service stops first or last): nothing left to close then.
            with contextlib.suppress(Exception):
                client.close()
        self.clients = []
