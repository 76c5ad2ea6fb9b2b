"""Waits in the triggerer, not a worker slot, until a recovered Deployment has answered for a sustained period.

The class path ``toilless.triggers.app_down.AppRecoveryTrigger`` is stored in the metadata database for every deferred
``verify_recovery`` task: keep it importable at this path. One look is ``steps.check_recovery`` of app_down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from toilless.common.redaction import mask_secrets

log = logging.getLogger(__name__)


class AppRecoveryTrigger(BaseTrigger):
    """Polls the rollout and the endpoints until both are good for ``sustain_seconds`` or the deadline passes.

    :param settings: the run's resolved settings (JSON-able).
    :param deadline: ISO time after which the trigger reports ``timeout``.
    :param poll_seconds: seconds between looks.
    :param sustain_seconds: how long rollout complete + every endpoint answering must hold.
    """

    def __init__(
        self, *, settings: dict[str, Any], deadline: str, poll_seconds: float = 5.0, sustain_seconds: float = 30.0
    ) -> None:
        super().__init__()
        self.settings = settings
        self.deadline = deadline
        self.poll_seconds = poll_seconds
        self.sustain_seconds = sustain_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "settings": self.settings,
                "deadline": self.deadline,
                "poll_seconds": self.poll_seconds,
                "sustain_seconds": self.sustain_seconds,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from toilless.sops.app_down.steps import check_recovery

        deadline = datetime.fromisoformat(self.deadline)
        looks = 0
        good_since: float | None = None
        good_since_at = ""
        last: dict[str, Any] = {"detail": "not checked yet"}
        while True:
            looks += 1
            try:
                # The hooks are synchronous (kubernetes client, requests): keep them off the triggerer's loop.
                last = await asyncio.to_thread(check_recovery, self.settings)
                good = last["rollout_complete"] and last["endpoints_ok"]
                last["detail"] = (
                    "rollout complete, endpoints answering"
                    if good
                    else f"rollout complete: {last['rollout_complete']}; failing: {', '.join(last['failing']) or '-'}"
                )
            except Exception as err:  # a failed look is retried until the deadline
                good = False
                last = {"detail": f"check failed: {mask_secrets(err)[:300]}"}
                log.warning("Recovery check failed (will look again): %s", last["detail"])
            now = time.monotonic()
            if good and good_since is None:
                good_since, good_since_at = now, datetime.now(UTC).isoformat()
            elif not good:
                good_since = None
            sustained = now - good_since if good_since is not None else 0.0
            if good and sustained >= self.sustain_seconds:
                yield TriggerEvent(
                    {
                        "status": "recovered",
                        "looks": looks,
                        "recovered_at": good_since_at,
                        "sustained_seconds": round(sustained, 1),
                        "checked_at": datetime.now(UTC).isoformat(),
                        "detail": last.get("detail", ""),
                    }
                )
                return
            if datetime.now(UTC) >= deadline:
                yield TriggerEvent(
                    {
                        "status": "timeout",
                        "looks": looks,
                        "checked_at": datetime.now(UTC).isoformat(),
                        "detail": last.get("detail", ""),
                    }
                )
                return
            await asyncio.sleep(self.poll_seconds)
