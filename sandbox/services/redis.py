"""Redis: one local redis-server for the Redis SOPs; their seeders (order 50) fill it through ``ctx.published["redis"]``."""

from __future__ import annotations

from typing import Any

from sandbox.redis_server import RedisServer
from sandbox.service import SandboxContext, ServerService


class RedisService(ServerService):
    name = "redis"
    description = "Redis (redis-server)"
    published_as = "redis"

    def launch(self, ctx: SandboxContext) -> RedisServer:
        return RedisServer(port=ctx.port(5062), maxclients=1000)

    def connections(self, ctx: SandboxContext) -> dict[str, dict[str, Any]]:
        return {"redis_default": self.running().airflow_connection()}

    def summary(self, ctx: SandboxContext) -> str:
        return f"Redis on 127.0.0.1:{self.running().port} (Connection redis_default)"
