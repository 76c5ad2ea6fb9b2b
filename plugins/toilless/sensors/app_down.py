"""Verify an app's recovery after app_down acted, without holding a worker slot."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator

from toilless.triggers.app_down import AppRecoveryTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class AppRecoverySensor(BaseSensorOperator):
    """Defers to :class:`AppRecoveryTrigger` after an action; skips when nothing was done.

    :param settings: the run's resolved settings (templated; an XCom of ``resolve_settings``).
    :return: the trigger's event: ``status`` (recovered | timeout), ``recovered_at``, ``sustained_seconds``, ``detail``.
    """

    template_fields: Sequence[str] = ("settings",)

    def __init__(self, *, settings: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings

    def execute(self, context: Context) -> Any:
        from airflow.sdk.exceptions import AirflowSkipException

        from toilless.sops.app_down.steps import action_outcome

        outcome = action_outcome(context)
        if not (outcome or {}).get("acted"):
            raise AirflowSkipException(f"nothing to verify: {(outcome or {}).get('reason', 'no action taken')}")
        verify = self.settings["verify"]
        minutes = float(verify["timeout_minutes"])
        self.defer(
            trigger=AppRecoveryTrigger(
                settings=self.settings,
                deadline=(datetime.now(UTC) + timedelta(minutes=minutes)).isoformat(),
                poll_seconds=float(verify["poll_seconds"]),
                sustain_seconds=float(verify["sustain_seconds"]),
            ),
            method_name="execute_complete",
            # The trigger has its own deadline; this one only guards against a lost triggerer.
            timeout=timedelta(minutes=minutes + 10),
        )

    def poke(self, context: Context) -> bool:
        raise NotImplementedError("AppRecoverySensor always defers")

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        self.log.info("Recovery check finished: %s (%s)", event.get("status"), event.get("detail"))
        return event
