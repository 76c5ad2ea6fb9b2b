"""Waits in the triggerer, not a worker slot, until a restarted order processor shows it has recovered."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from toilless.common.redaction import mask_secrets

log = logging.getLogger(__name__)


def check_recovery(settings: dict[str, Any], restarted_at: str, baseline_outstanding: int) -> dict[str, Any]:
    """One look: the processor's latest run from its log, and the backlog from the orders database."""
    from toilless.common.config import include_path
    from toilless.hooks.order_processor import read_processor_run
    from toilless.hooks.orders_db import OrdersDbHook
    from toilless.order_processor import recovery_seen

    summary = read_processor_run(settings)
    backlog = OrdersDbHook(
        orders_conn_id=settings["orders_conn_id"], sql_path=include_path(settings["backlog_sql"])
    ).measure_backlog(
        now=datetime.now(UTC), oldest_age_minutes=float(settings["thresholds"]["oldest_order_age_minutes"])
    )
    recovered, detail = recovery_seen(
        summary,
        backlog.outstanding,
        restarted_at=datetime.fromisoformat(restarted_at),
        baseline_outstanding=baseline_outstanding,
    )
    return {
        "recovered": recovered,
        "detail": detail,
        "outstanding": backlog.outstanding,
        "orders_processed": summary.orders_processed,
        "started_at": summary.started_at.isoformat() if summary.started_at else None,
        "excerpt": summary.excerpt,
    }


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
