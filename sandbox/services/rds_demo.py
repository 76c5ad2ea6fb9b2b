"""RDS storage guard demo: an instance near the critical threshold whose storage keeps growing."""

from __future__ import annotations

import logging
import threading

from sandbox.service import SandboxContext, Service

log = logging.getLogger("sandbox")

DEMO_INSTANCE = "orders-db"


class RdsDemoService(Service):
    name = "rds_demo"
    order = 50
    description = "RDS demo instance for rds_storage_guard"

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self, ctx: SandboxContext) -> None:
        # moto loads its RDS backend on the first RDS call (about 1.5 s on 2 cores): seed in the background while
        # Airflow starts, so start-up is not slowed; summary() waits for it.
        moto = ctx.published["moto"]
        self._thread = threading.Thread(target=self._seed, args=(moto,), name="rds-demo-seed", daemon=True)
        self._thread.start()
        ctx.published["rds_demo"] = {"instance_id": DEMO_INSTANCE}

    def _seed(self, moto: object) -> None:
        from sandbox.rds_storage import seed_rds_instance

        try:
            # 86% used of 100 GiB, +0.5 GiB/day: warning now (critical at 90%).
            seed_rds_instance(
                moto.client("rds"),  # type: ignore[attr-defined]
                moto.client("cloudwatch"),  # type: ignore[attr-defined]
                DEMO_INSTANCE,
                allocated_gib=100,
                used_pct=86.0,
                growth_gib_per_day=0.5,
                tags={"team": "orders", "toilless-demo": "rds_storage_guard"},
            )
        except Exception as err:
            log.exception("Seeding the RDS demo instance failed")
            self._error = err

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
