"""Real client connections to the test Redis, named as applications name theirs (CLIENT SETNAME)."""

from __future__ import annotations

import time
from typing import Any

from sandbox.redis_server import RedisServer


class Crowd:
    """Open connections that stay open (one socket each) until :meth:`close`."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.connections: list[tuple[str, Any]] = []
        self.pubsubs: list[Any] = []

    def open(self, name: str, count: int) -> list[int]:
        ids = []
        for _ in range(count):
            client = self.server.client(client_name=name or None, single_connection_client=True)
            ids.append(int(client.client_id()))
            self.connections.append((name, client))
        return ids

    def subscriber(self, name: str) -> None:
        client = self.server.client(client_name=name)
        pubsub = client.pubsub()
        pubsub.subscribe("events")
        pubsub.get_message(timeout=1)
        # The client too: dropping it would close its pool, and with it the subscriber's connection.
        self.pubsubs.append(pubsub)
        self.connections.append((name, client))

    def wait_idle(self, seconds: float) -> None:
        time.sleep(seconds)

    def listed(self) -> dict[int, str]:
        """Every connection the server holds now: id -> name (the caller's own probe excluded)."""
        with self.server.client() as probe:
            own = int(probe.client_id())
            return {int(row["id"]): row["name"] for row in probe.client_list() if int(row["id"]) != own}

    def close(self) -> None:
        for pubsub in self.pubsubs:
            pubsub.close()
        for _, client in self.connections:
            client.close()
