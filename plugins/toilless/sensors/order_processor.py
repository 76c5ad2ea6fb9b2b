"""Verify a restarted order processor without holding a worker slot."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator

from toilless.triggers.order_processor import OrderProcessorRecoveryTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class OrderProcessorRecoverySensor(BaseSensorOperator):
    """Defers to :class:`OrderProcessorRecoveryTrigger` after a restart; skips when nothing was restarted.

    :param settings: the run's resolved settings (templated; an XCom of ``resolve_settings``).
    :param restart: the restart step's result (templated): ``{"restarted": bool, "restarted_at", ...}``.
    :param backlog: the measured backlog (templated): ``{"outstanding": int, ...}``.
    :return: the trigger's event: ``status`` (recovered | timeout), ``detail``, ``outstanding``, ``excerpt``.
    """

    template_fields: Sequence[str] = ("settings", "restart", "backlog")

    def __init__(
        self,
        *,
        settings: Any,
        restart: Any,
        backlog: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.restart = restart
        self.backlog = backlog

    def execute(self, context: Context) -> Any:
        from airflow.sdk.exceptions import AirflowSkipException

        if not (self.restart or {}).get("restarted"):
            raise AirflowSkipException(f"nothing to verify: {(self.restart or {}).get('reason', 'no restart')}")
        verify = self.settings["verify"]
        deadline = datetime.now(UTC) + timedelta(minutes=float(verify["timeout_minutes"]))
        self.defer(
            trigger=OrderProcessorRecoveryTrigger(
                settings=self.settings,
                restarted_at=self.restart["restarted_at"],
                baseline_outstanding=int(self.backlog["outstanding"]),
                deadline=deadline.isoformat(),
                poll_seconds=float(verify["poll_seconds"]),
            ),
            method_name="execute_complete",
            # The trigger has its own deadline; this one only guards against a lost triggerer.
            timeout=timedelta(minutes=float(verify["timeout_minutes"]) + 10),
        )

    def poke(self, context: Context) -> bool:
        # Only deferral is supported: a poke would hold a worker slot for the whole wait.
        raise NotImplementedError("OrderProcessorRecoverySensor always defers")

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        self.log.info("Recovery check finished: %s (%s)", event.get("status"), event.get("detail"))
        return event
