"""Wait for a failing DNS server to recover without holding a worker slot."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator

from toilless.triggers.dns import DnsRecoveryTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class DnsRecoverySensor(BaseSensorOperator):
    """Defers to :class:`DnsRecoveryTrigger` when the decision is to wait; skips otherwise.

    :param settings: the run's resolved settings (templated; an XCom).
    :param found: the active and standby servers (templated; an XCom).
    :param decision: the decision (templated; an XCom): only ``action == "wait"`` waits.
    :return: the trigger's event: ``status`` (recovered | timeout), ``looks``, ``waited_seconds``, the states.
    """

    template_fields: Sequence[str] = ("settings", "found", "decision")

    def __init__(self, *, settings: Any, found: Any, decision: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.found = found
        self.decision = decision

    def execute(self, context: Context) -> Any:
        from airflow.sdk.exceptions import AirflowSkipException

        if (self.decision or {}).get("action") != "wait":
            raise AirflowSkipException(f"nothing to wait for: {(self.decision or {}).get('action')}")
        minutes = float(self.settings["wait_minutes"])
        now = datetime.now(UTC)
        self.defer(
            trigger=DnsRecoveryTrigger(
                settings=self.settings,
                found=self.found,
                started_at=now.isoformat(),
                deadline=(now + timedelta(minutes=minutes)).isoformat(),
                poll_seconds=float(self.settings["poll_seconds"]),
            ),
            method_name="execute_complete",
            # The trigger has its own deadline; this one only guards against a lost triggerer.
            timeout=timedelta(minutes=minutes + 10),
        )

    def poke(self, context: Context) -> bool:
        raise NotImplementedError("DnsRecoverySensor always defers")

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        self.log.info("Recovery wait finished: %s (%s)", event.get("status"), event.get("detail"))
        return event
