"""What was measured about an instance, and what it says: used %, growth rate, days until full, ok/warning/critical.

The growth rate is a least-squares fit of CloudWatch ``FreeStorageSpace`` since the last jump up in free space (a
storage increase or a clean-up), so an earlier growth does not read as negative usage.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from toilless.sops.rds_storage_guard.storage_policy import StoragePolicy


GIB = 1024**3
SECONDS_PER_DAY = 86400.0

# States
OK = "ok"
WARNING = "warning"
CRITICAL = "critical"
UNKNOWN = "unknown"
STATE_RANK = {OK: 0, UNKNOWN: 1, WARNING: 2, CRITICAL: 3}

#: The describe_db_instances fields a decision needs (XCom stays small).
DESCRIPTION_FIELDS = (
    "DBInstanceIdentifier",
    "DBInstanceStatus",
    "StorageType",
    "AllocatedStorage",
    "MaxAllocatedStorage",
    "MultiAZ",
    "PendingModifiedValues",
    "Engine",
)


@dataclass(frozen=True)
class InstanceStorage:
    """What was measured about one instance."""

    instance_id: str
    status: str
    storage_type: str
    allocated_gib: int
    max_allocated_gib: int | None = None  # storage autoscaling limit; None = autoscaling off
    multi_az: bool = False
    pending_allocated_gib: int | None = None  # PendingModifiedValues.AllocatedStorage
    last_storage_change_at: datetime | None = None
    #: (epoch seconds, FreeStorageSpace bytes), any order.
    free_storage: Sequence[tuple[float, float]] = ()

    @property
    def autoscaling_enabled(self) -> bool:
        return self.max_allocated_gib is not None and self.max_allocated_gib > self.allocated_gib


@dataclass(frozen=True)
class Forecast:
    used_bytes: float
    free_bytes: float
    used_pct: float
    growth_bytes_per_day: float | None  # None: too few samples to fit a trend
    days_until_full: float | None  # None: not growing (or unknown)
    samples: int
    trend_samples: int
    measured_at: float  # epoch seconds of the newest sample


def instance_from_description(
    description: Mapping[str, Any],
    free_storage: Sequence[tuple[float, float]],
    last_storage_change_at: datetime | None,
) -> InstanceStorage:
    """An :class:`InstanceStorage` from one ``describe_db_instances`` entry and its metric history."""
    pending = (description.get("PendingModifiedValues") or {}).get("AllocatedStorage")
    max_allocated = description.get("MaxAllocatedStorage")
    return InstanceStorage(
        instance_id=description["DBInstanceIdentifier"],
        status=description.get("DBInstanceStatus", "unknown"),
        storage_type=description.get("StorageType", "gp2"),
        allocated_gib=int(description["AllocatedStorage"]),
        max_allocated_gib=int(max_allocated) if max_allocated is not None else None,
        multi_az=bool(description.get("MultiAZ", False)),
        pending_allocated_gib=int(pending) if pending is not None else None,
        last_storage_change_at=last_storage_change_at,
        free_storage=tuple(free_storage),
    )


def least_squares_slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Slope of the least-squares line through ``(x, y)`` points; None for fewer than two distinct x."""
    count = len(points)
    if count < 2:
        return None
    # Centre x on the first point: epoch seconds squared lose precision in the sums.
    origin = points[0][0]
    sum_x = sum_y = sum_xx = sum_xy = 0.0
    for x, y in points:
        x -= origin
        sum_x += x
        sum_y += y
        sum_xx += x * x
        sum_xy += x * y
    variance = count * sum_xx - sum_x * sum_x
    if variance <= 0:
        return None
    return (count * sum_xy - sum_x * sum_y) / variance


def trend_segment(
    points: Sequence[tuple[float, float]], allocated_bytes: float, break_fraction: float
) -> list[tuple[float, float]]:
    """The samples after the last jump up in free storage (a storage increase or a clean-up), oldest first.

    Fitting across such a jump would read the jump as negative growth and hide the real trend.
    """
    ordered = points if _is_sorted(points) else sorted(points)
    threshold = allocated_bytes * break_fraction
    start = 0
    for index in range(1, len(ordered)):
        if ordered[index][1] - ordered[index - 1][1] > threshold:
            start = index
    return list(ordered[start:])


def _is_sorted(points: Sequence[tuple[float, float]]) -> bool:
    return all(points[index - 1][0] <= points[index][0] for index in range(1, len(points)))


def forecast_storage(instance: InstanceStorage, policy: StoragePolicy) -> Forecast | None:
    """Used %, growth rate (least squares over the trend segment) and days until full; None without samples."""
    if not instance.free_storage:
        return None
    allocated_bytes = instance.allocated_gib * GIB
    ordered = sorted(instance.free_storage)
    measured_at, free_bytes = ordered[-1]
    free_bytes = max(0.0, min(free_bytes, allocated_bytes))
    used_bytes = allocated_bytes - free_bytes
    segment = trend_segment(ordered, allocated_bytes, policy.trend_break_fraction)
    slope = least_squares_slope(segment)  # bytes of free storage per second
    growth = -slope * SECONDS_PER_DAY if slope is not None else None
    days_until_full = free_bytes / growth if growth is not None and growth > 0 else None
    return Forecast(
        used_bytes=used_bytes,
        free_bytes=free_bytes,
        used_pct=100.0 * used_bytes / allocated_bytes if allocated_bytes else 100.0,
        growth_bytes_per_day=growth,
        days_until_full=days_until_full,
        samples=len(ordered),
        trend_samples=len(segment),
        measured_at=measured_at,
    )


def classify(forecast: Forecast | None, policy: StoragePolicy) -> str:
    """ok / warning / critical from used % and days until full; unknown without data."""
    if forecast is None:
        return UNKNOWN
    days = forecast.days_until_full
    if forecast.used_pct >= policy.critical_used_pct or (days is not None and days <= policy.critical_days):
        return CRITICAL
    if forecast.used_pct >= policy.warning_used_pct or (days is not None and days <= policy.warning_days):
        return WARNING
    return OK


def worst_state(states: Iterable[str]) -> str:
    return max(states, key=lambda state: STATE_RANK.get(state, 0), default=OK)
