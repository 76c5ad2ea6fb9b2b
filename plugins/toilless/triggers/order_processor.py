"""Waits in the triggerer, not a worker slot, until a restarted order processor shows it has recovered.

The class path ``toilless.triggers.order_processor.OrderProcessorRecoveryTrigger`` is stored in the metadata
database for every deferred ``verify_recovery`` task: keep it importable at this path (tests/sops/order_backlog_check/
test_trigger_path.py). One look is ``steps.check_recovery`` of order_backlog_check.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from toilless.common.redaction import mask_secrets
from toilless.sops.order_backlog_check.steps import check_recovery

log = logging.getLogger(__name__)


class OrderProcessorRecoveryTrigger(BaseTrigger):
    """Polls the processor's log and the backlog until it recovered or the deadline passed.

    :param settings: the run's resolved settings (JSON-able; see the DAG's ``resolve_settings``).
    :param restarted_at: ISO time of the restart; only a ``Startup...`` after it counts.
    :param baseline_outstanding: the backlog at the restart; it must fall below this.
    :param deadline: ISO time after which the trigger gives up and reports ``timeout``.
    :param poll_seconds: seconds between looks.
    """

    def __init__(
        self,
        *,
        settings: dict[str, Any],
        restarted_at: str,
        baseline_outstanding: int,
        deadline: str,
        poll_seconds: float = 60.0,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.restarted_at = restarted_at
        self.baseline_outstanding = baseline_outstanding
        self.deadline = deadline
        self.poll_seconds = poll_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "settings": self.settings,
                "restarted_at": self.restarted_at,
                "baseline_outstanding": self.baseline_outstanding,
                "deadline": self.deadline,
                "poll_seconds": self.poll_seconds,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = datetime.fromisoformat(self.deadline)
        looks = 0
        last: dict[str, Any] = {"detail": "not checked yet"}
        while True:
            looks += 1
            try:
                # The hooks are synchronous (DB-API, kubernetes client): keep them off the triggerer's loop.
                last = await asyncio.to_thread(
                    check_recovery, self.settings, self.restarted_at, self.baseline_outstanding
                )
            except Exception as err:  # a failed look is retried until the deadline
                # The error may quote a DSN or token; its text goes to the log, the event (XCom) and Slack.
                error = mask_secrets(err)[:500]
                log.warning("Recovery check failed (will look again): %s", error)
                last = {"recovered": False, "detail": f"check failed: {error}"}
            if last.get("recovered"):
                yield TriggerEvent({"status": "recovered", "looks": looks, **last})
                return
            if datetime.now(UTC) >= deadline:
                yield TriggerEvent({"status": "timeout", "looks": looks, **last})
                return
            log.info("Not recovered yet (%s); next look in %ss", last.get("detail"), self.poll_seconds)
            await asyncio.sleep(self.poll_seconds)
