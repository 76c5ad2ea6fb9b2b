"""Waits in the triggerer, not a worker slot, for a reachable but failing DNS server to answer correctly again.

The class path ``toilless.triggers.dns.DnsRecoveryTrigger`` is stored in the metadata database for every deferred
``wait_for_recovery`` task: keep it importable at this path. One look is ``steps.look_again`` of dns_failover.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from toilless.common.redaction import mask_secrets

log = logging.getLogger(__name__)


class DnsRecoveryTrigger(BaseTrigger):
    """Re-probes both servers every ``poll_seconds`` until the active one answers correctly or the deadline passes.

    :param settings: the run's resolved settings (JSON-able).
    :param found: ``{"active", "standby"}`` from find_active_server.
    :param started_at: ISO time the wait began (for the waited seconds).
    :param deadline: ISO time after which the trigger reports ``timeout``; it looks at least once.
    :param poll_seconds: seconds between looks.
    """

    def __init__(
        self, *, settings: dict[str, Any], found: dict[str, Any], started_at: str, deadline: str, poll_seconds: float
    ) -> None:
        super().__init__()
        self.settings = settings
        self.found = found
        self.started_at = started_at
        self.deadline = deadline
        self.poll_seconds = poll_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "settings": self.settings,
                "found": self.found,
                "started_at": self.started_at,
                "deadline": self.deadline,
                "poll_seconds": self.poll_seconds,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from toilless.sops.dns_failover.steps import look_again

        deadline = datetime.fromisoformat(self.deadline)
        started = datetime.fromisoformat(self.started_at)
        looks = 0
        while True:
            looks += 1
            try:
                # dnspython's sync queries: keep them off the triggerer's event loop.
                last = await asyncio.to_thread(look_again, self.settings, self.found)
            except Exception as err:  # a failed look counts as "not recovered"; looked at again until the deadline
                last = {"recovered": False, "detail": f"look failed: {mask_secrets(err)[:300]}"}
            now = datetime.now(UTC)
            event = {
                **last,
                "looks": looks,
                "waited_seconds": (now - started).total_seconds(),
                "ended_at": now.isoformat(),
            }
            if last.get("recovered"):
                yield TriggerEvent({"status": "recovered", **event})
                return
            if now >= deadline:
                yield TriggerEvent({"status": "timeout", **event})
                return
            log.info("Not recovered yet (%s); next look in %ss", last.get("detail"), self.poll_seconds)
            await asyncio.sleep(min(self.poll_seconds, max(0.0, (deadline - now).total_seconds())))
