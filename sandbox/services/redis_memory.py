"""Redis memory demo (redis_memory): the sandbox Redis at 90% of maxmemory (noeviction), with 20,000 abandoned
sessions without TTL idle for ten days, live sessions, an expiring cache and one 4 MiB key nobody reads.

The Variable ``toilless_redis_memory`` lets the SOP act on ``session:`` keys in the sandbox (dry run off, no
maintenance window): a run sets a TTL on at most 1,000 abandoned sessions and leaves the live ones alone.
"""

from __future__ import annotations

import json

from sandbox.redis_demo import seed_memory_pressure
from sandbox.service import SandboxContext, Service

OVERRIDE = {
    "dry_run": False,
    "respect_maintenance_window": False,
    "cleanup": {"prefixes": ["session:"], "action": "expire"},
}


class RedisMemoryService(Service):
    name = "redis_memory"
    order = 50
    description = "Redis memory demo: 90% of maxmemory, abandoned sessions without TTL (redis_memory)"

    def __init__(self) -> None:
        self.seeded: dict[str, int] = {}

    def start(self, ctx: SandboxContext) -> None:
        with ctx.published["redis"].client() as client:
            self.seeded = seed_memory_pressure(client)

    def variables(self, ctx: SandboxContext) -> dict[str, str]:
        return {"toilless_redis_memory": json.dumps(OVERRIDE)}

    def summary(self, ctx: SandboxContext) -> str:
        return (
            f"{self.description}: {self.seeded.get('keys', 0):,} keys, "
            f"{self.seeded.get('used_bytes', 0) / 1048576:.0f} of {self.seeded.get('maxmemory_bytes', 0) / 1048576:.0f}"
            " MiB: trigger redis_memory"
        )
