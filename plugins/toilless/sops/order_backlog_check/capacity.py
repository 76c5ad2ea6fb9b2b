"""How much the order processor can do per run, and what run frequency would drain the backlog (no Airflow import)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from toilless.common.config import typed_settings
from toilless.sops.order_backlog_check.log_parsing import RunSummary


@dataclass(frozen=True)
class Capacity:
    """The processor's configured figures (SOPS.md: 2 processes, 4 orders at a time, 10-15 s, hourly)."""

    processes: int = 2
    orders_at_a_time: int = 4
    seconds_per_order_min: float = 10.0
    seconds_per_order_max: float = 15.0
    run_interval_minutes: float = 60.0
    min_run_interval_minutes: float = 5.0

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Capacity:
        capacity = typed_settings(cls, config, what="processor settings", optional=["min_run_interval_minutes"])
        if min(capacity.processes, capacity.orders_at_a_time) < 1:
            raise ValueError("processes and orders_at_a_time must be at least 1")
        if not 0 < capacity.seconds_per_order_min <= capacity.seconds_per_order_max:
            raise ValueError("seconds_per_order_min must be positive and not above seconds_per_order_max")
        if capacity.run_interval_minutes <= 0 or capacity.min_run_interval_minutes <= 0:
            raise ValueError("run intervals must be positive")
        return capacity

    @property
    def slots(self) -> int:
        return self.processes * self.orders_at_a_time

    def per_run(self, seconds_per_order: float) -> int:
        """Orders one run can finish before the next is due."""
        return math.floor(self.slots * self.run_interval_minutes * 60 / seconds_per_order)


@dataclass(frozen=True)
class CapacityAssessment:
    seconds_per_order: float
    seconds_per_order_source: str  # "observed" | "configured (worst case)"
    capacity_per_run: int
    capacity_per_run_best: int
    throughput_per_hour: float
    outstanding: int
    drain_minutes: float
    runs_needed: int
    suggested_interval_minutes: float
    suggested_processes: int
    over_capacity: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def assess_capacity(
    capacity: Capacity, outstanding: int, summary: RunSummary | None, min_orders_for_throughput: int = 8
) -> CapacityAssessment:
    """Compare the backlog with what the processor can do per run, and suggest a run frequency.

    The observed pace of the latest run wins over the configured worst case once it is based on enough
    orders, but never below the configured best case (a burst of quick orders must not hide a slow processor).
    """
    observed = summary.observed_seconds_per_order(capacity.slots) if summary else None
    if observed is not None and summary is not None and summary.orders_processed >= min_orders_for_throughput:
        seconds_per_order = max(observed, capacity.seconds_per_order_min)
        source = "observed"
    else:
        seconds_per_order = capacity.seconds_per_order_max
        source = "configured (worst case)"
    per_run = max(capacity.per_run(seconds_per_order), 1)
    runs_needed = max(math.ceil(outstanding / per_run), 1)
    interval = max(capacity.run_interval_minutes / runs_needed, capacity.min_run_interval_minutes)
    processes = math.ceil(
        outstanding * seconds_per_order / (capacity.orders_at_a_time * capacity.run_interval_minutes * 60)
    )
    return CapacityAssessment(
        seconds_per_order=round(seconds_per_order, 2),
        seconds_per_order_source=source,
        capacity_per_run=per_run,
        capacity_per_run_best=capacity.per_run(capacity.seconds_per_order_min),
        throughput_per_hour=round(capacity.slots * 3600 / seconds_per_order, 1),
        outstanding=outstanding,
        drain_minutes=round(outstanding * seconds_per_order / capacity.slots / 60, 1),
        runs_needed=runs_needed,
        suggested_interval_minutes=math.floor(interval),
        suggested_processes=max(processes, capacity.processes),
        over_capacity=outstanding > per_run,
    )
