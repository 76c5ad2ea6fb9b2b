"""Redis connections demo (redis_connections): a leaking ``billing-worker`` pool holds 45 idle connections (its pool
is 20) and 5 ``api`` ones, on a Redis with maxclients 60: over the 80% warning.

The Variable ``toilless_redis_connections`` lets the SOP end idle ``billing-worker`` connections in the sandbox
(dry run off, no maintenance window) once they have been idle for a minute.
"""

from __future__ import annotations

import json

from sandbox.redis_demo import ConnectionLeak
from sandbox.service import SandboxContext, Service

OVERRIDE = {
    "dry_run": False,
    "respect_maintenance_window": False,
    "kill": {"client_names": ["billing-worker"], "idle_seconds": 60, "max_clients_per_run": 20},
    "pools": {"billing-worker": 20, "api": 10},
}


class RedisConnectionsService(Service):
    name = "redis_connections"
    order = 50
    description = "Redis connections demo: a leaking pool near maxclients (redis_connections)"

    def __init__(self) -> None:
        self.leak: ConnectionLeak | None = None

    def start(self, ctx: SandboxContext) -> None:
        self.leak = ConnectionLeak(ctx.published["redis"])
        self.leak.start()

    def stop(self) -> None:
        if self.leak:
            self.leak.stop()

    def variables(self, ctx: SandboxContext) -> dict[str, str]:
        return {"toilless_redis_connections": json.dumps(OVERRIDE)}

    def summary(self, ctx: SandboxContext) -> str:
        return f"{self.description}: 50 of maxclients 60 connections: trigger redis_connections"
