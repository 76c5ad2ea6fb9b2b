"""RDS storage guard demo: an instance near the critical threshold whose storage keeps growing."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from sandbox.rds_storage_guard_data import StorageModel, publish_free_storage
from sandbox.service import SandboxContext, Service

log = logging.getLogger("sandbox")

DEMO_INSTANCE = "orders-db"
#: How often the stand-in reports FreeStorageSpace (RDS reports every minute; the guard reads hourly minimums).
PUBLISH_SECONDS = 60.0


class RdsDemoService(Service):
    name = "rds_demo"
    order = 50
    description = "RDS demo instance for rds_storage_guard"

    def __init__(self, publish_seconds: float = PUBLISH_SECONDS) -> None:
        self._thread: threading.Thread | None = None
        self._publisher: threading.Thread | None = None
        self._stopping = threading.Event()
        self._error: BaseException | None = None
        self.publish_seconds = publish_seconds
        self.model: StorageModel | None = None

    def start(self, ctx: SandboxContext) -> None:
        # moto loads its RDS backend on the first RDS call (about 1.5 s on 2 cores): seed in the background while
        # Airflow starts, so start-up is not slowed; summary() waits for it.
        moto = ctx.published["moto"]
        self._thread = threading.Thread(target=self._seed, args=(moto,), name="rds-demo-seed", daemon=True)
        self._thread.start()
        ctx.published["rds_demo"] = {"instance_id": DEMO_INSTANCE}

    def _seed(self, moto: object) -> None:
        from sandbox.rds_storage_guard_data import seed_rds_instance

        try:
            # 86% used of 100 GiB, +0.5 GiB/day: warning now (critical at 90%).
            now = datetime.now(UTC)
            seed_rds_instance(
                moto.client("rds"),  # type: ignore[attr-defined]
                moto.client("cloudwatch"),  # type: ignore[attr-defined]
                DEMO_INSTANCE,
                allocated_gib=100,
                used_pct=86.0,
                growth_gib_per_day=0.5,
                tags={"team": "orders", "toilless-demo": "rds_storage_guard"},
                now=now,
            )
            self.model = StorageModel(DEMO_INSTANCE, 100, 86.0, 0.5, now)
        except Exception as err:
            log.exception("Seeding the RDS demo instance failed")
            self._error = err
            return
        self._publisher = threading.Thread(
            target=self._publish_loop, args=(moto,), name="rds-demo-metrics", daemon=True
        )
        self._publisher.start()

    def _publish_loop(self, moto: object) -> None:
        """Report FreeStorageSpace from the instance's current allocation, so a growth shows as more free space."""
        rds = moto.client("rds")  # type: ignore[attr-defined]
        cloudwatch = moto.client("cloudwatch")  # type: ignore[attr-defined]
        while not self._stopping.wait(self.publish_seconds):
            try:
                self.publish(rds, cloudwatch)
            except Exception:  # moto going away at shutdown, or a transient error: try again next round
                log.warning("Publishing the RDS demo's FreeStorageSpace failed", exc_info=True)

    def publish(self, rds: Any, cloudwatch: Any, now: datetime | None = None) -> float:
        """One FreeStorageSpace sample for the demo instance (also called by tests)."""
        if self.model is None:
            raise RuntimeError("the RDS demo instance is not seeded")
        return publish_free_storage(rds, cloudwatch, self.model, now=now)

    def stop(self) -> None:
        self._stopping.set()
        if self._publisher is not None:
            self._publisher.join(5)

    def wait(self, timeout: float = 30.0) -> None:
        """Block until seeding finished; raise what it raised."""
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError(f"RDS demo seeding still running after {timeout}s")
        if self._error is not None:
            raise RuntimeError(f"RDS demo seeding failed: {self._error}") from self._error

    def summary(self, ctx: SandboxContext) -> str:
        try:
            self.wait()
        except (RuntimeError, TimeoutError) as err:
            return f"RDS demo instance NOT seeded: {err}"
        return (
            f"RDS instance {DEMO_INSTANCE} (moto) at 86% of 100 GiB, growing 0.5 GiB/day: trigger rds_storage_guard "
            "(Param critical_pct=85 shows the approval path)"
        )
