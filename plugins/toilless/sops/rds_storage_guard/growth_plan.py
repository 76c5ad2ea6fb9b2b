"""The decision per instance: nothing, recommend storage autoscaling, ask to grow to N GiB, grow now, or blocked.

RDS facts it follows (AWS RDS user guide, "Working with storage for Amazon RDS DB instances"):

* allocated storage can only grow; an increase is permanent and must be at least 10% of the current allocation;
* after a storage modification, the next one has to wait six hours, or until storage optimization has finished,
  whichever is longer (status ``storage-optimization``);
* with storage autoscaling on (``MaxAllocatedStorage`` set), the autoscaling limit must stay at least 10% above the
  allocation, so the limit has to be raised with the allocation when it would fall below that.

``steps.decide_action`` builds an :class:`~toilless.sops.rds_storage_guard.forecasting.InstanceStorage` per
instance, calls :func:`decide`, and acts on the returned :class:`Decision`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from toilless.common import gate
from toilless.sops.rds_storage_guard.forecasting import (
    GIB,
    OK,
    WARNING,
    Forecast,
    InstanceStorage,
    classify,
    forecast_storage,
)
from toilless.sops.rds_storage_guard.storage_policy import RDS_MIN_STEP_PCT, StoragePolicy, StoragePolicyError

# Actions
NONE = "none"
RECOMMEND_AUTOSCALING = "recommend_autoscaling"
REQUEST_APPROVAL = "request_approval"
GROW_NOW = "grow_now"
BLOCKED = "blocked"

# Why growth is blocked
NOT_AVAILABLE = "instance_not_available"
STORAGE_OPTIMIZATION = "storage_optimization_in_progress"
MODIFICATION_PENDING = "storage_modification_pending"
COOLDOWN = "modification_cooldown"
CAP_REACHED = "cap_reached"


@dataclass(frozen=True)
class Decision:
    instance_id: str
    state: str
    action: str
    reason: str
    blocked_reason: str | None = None
    allocated_gib: int = 0
    target_gib: int | None = None
    max_allocated_gib: int | None = None
    new_max_allocated_gib: int | None = None  # set when the autoscaling limit must rise with the allocation
    increase_gib: int = 0
    monthly_cost_delta: float = 0.0
    currency: str = "USD"
    storage_type: str = ""
    multi_az: bool = False
    headroom_days_after: float | None = None
    allowed_from: str | None = None  # ISO time when a cool-down ends
    forecast: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def minimum_target_gib(allocated_gib: int, policy: StoragePolicy) -> int:
    """The smallest allocation RDS accepts as an increase under the configured step (>= 10%)."""
    step = max(policy.growth_step_pct, RDS_MIN_STEP_PCT)
    return max(allocated_gib + 1, _ceil(allocated_gib * (100.0 + step) / 100.0))


def headroom_target_gib(forecast: Forecast, policy: StoragePolicy) -> int:
    """The allocation that keeps used storage <= target_used_pct for headroom_days at the measured growth."""
    growth = max(forecast.growth_bytes_per_day or 0.0, 0.0)
    projected_used = forecast.used_bytes + growth * policy.headroom_days
    return math.ceil(projected_used / (policy.target_used_pct / 100.0) / GIB)


def effective_cap_gib(instance: InstanceStorage, policy: StoragePolicy) -> int:
    """The most this instance may be given: the policy cap, the storage type's maximum and, with autoscaling on,
    room for the autoscaling limit (10% above the allocation) under the cap."""
    cap = min(policy.cap_gib, policy.storage_type_max_gib.get(instance.storage_type, policy.cap_gib))
    if instance.autoscaling_enabled:
        cap = min(cap, math.floor(policy.cap_gib / (1 + RDS_MIN_STEP_PCT / 100.0)))
    return cap


def monthly_cost_delta(instance: InstanceStorage, increase_gib: int, policy: StoragePolicy) -> float:
    """Extra storage cost per month: GiB added x price per GiB-month of the storage type (x2 for Multi-AZ)."""
    if instance.storage_type not in policy.price_per_gib_month:
        raise StoragePolicyError(
            f"no price per GiB-month for storage type {instance.storage_type!r}: add it to "
            "policy.price_per_gib_month in include/config/rds_storage_guard.yaml"
        )
    price = float(policy.price_per_gib_month[instance.storage_type])
    return round(increase_gib * price * (2 if instance.multi_az else 1), 2)


def days_of_headroom(forecast: Forecast, allocated_gib: int, policy: StoragePolicy) -> float | None:
    """Days until used storage reaches the critical threshold at ``allocated_gib``; None if not growing."""
    growth = forecast.growth_bytes_per_day
    if growth is None or growth <= 0:
        return None
    limit = allocated_gib * GIB * policy.critical_used_pct / 100.0
    return max(0.0, (limit - forecast.used_bytes) / growth)


def decide(
    instance: InstanceStorage,
    policy: StoragePolicy,
    *,
    now: datetime,
    auto_allowed_now: bool = True,
    auto_block_reason: str = "",
) -> Decision:
    """What to do about one instance's storage.

    ``auto_allowed_now`` is the time policy (maintenance window): when False, a growth that policy would make
    automatically is asked for approval instead, with ``auto_block_reason`` saying why.
    """
    if now.tzinfo is None:
        raise StoragePolicyError("decide() needs a timezone-aware 'now'")
    forecast = forecast_storage(instance, policy)
    state = classify(forecast, policy)
    base: dict[str, Any] = {
        "instance_id": instance.instance_id,
        "state": state,
        "allocated_gib": instance.allocated_gib,
        "max_allocated_gib": instance.max_allocated_gib,
        "currency": policy.currency,
        "storage_type": instance.storage_type,
        "multi_az": instance.multi_az,
        "forecast": asdict(forecast) if forecast else None,
    }
    if forecast is None:
        return Decision(
            **base, action=NONE, reason="no FreeStorageSpace data in CloudWatch: cannot tell how full it is"
        )
    if state == OK:
        return Decision(**base, action=NONE, reason=f"{forecast.used_pct:.1f}% used{_eta(forecast)}")
    if state == WARNING:
        return _decide_warning(instance, forecast, base)
    return _decide_critical(instance, forecast, policy, base, now, auto_allowed_now, auto_block_reason)


def _decide_warning(instance: InstanceStorage, forecast: Forecast, base: dict[str, Any]) -> Decision:
    usage = f"{forecast.used_pct:.1f}% used{_eta(forecast)}"
    if instance.max_allocated_gib is None:
        return Decision(
            **base,
            action=RECOMMEND_AUTOSCALING,
            reason=f"{usage}; storage autoscaling is off: enable it (MaxAllocatedStorage) so RDS can grow storage",
        )
    if not instance.autoscaling_enabled:
        return Decision(
            **base,
            action=RECOMMEND_AUTOSCALING,
            reason=(
                f"{usage}; storage autoscaling limit {instance.max_allocated_gib} GiB is already reached: "
                "raise MaxAllocatedStorage or plan the growth"
            ),
        )
    return Decision(
        **base,
        action=NONE,
        reason=f"{usage}; storage autoscaling may grow it up to {instance.max_allocated_gib} GiB",
    )


def _decide_critical(
    instance: InstanceStorage,
    forecast: Forecast,
    policy: StoragePolicy,
    base: dict[str, Any],
    now: datetime,
    auto_allowed_now: bool,
    auto_block_reason: str,
) -> Decision:
    usage = f"{forecast.used_pct:.1f}% used{_eta(forecast)}"
    blocked = _blocker(instance, policy, now)
    if blocked is not None:
        code, why, allowed_from = blocked
        return Decision(
            **base,
            action=BLOCKED,
            blocked_reason=code,
            reason=f"{usage}; cannot grow: {why}",
            allowed_from=allowed_from.isoformat() if allowed_from else None,
        )

    minimum = minimum_target_gib(instance.allocated_gib, policy)
    wanted = max(minimum, headroom_target_gib(forecast, policy))
    cap = effective_cap_gib(instance, policy)
    if minimum > cap:
        return Decision(
            **base,
            action=BLOCKED,
            blocked_reason=CAP_REACHED,
            reason=(
                f"{usage}; cannot grow: the smallest allowed increase (to {minimum} GiB) is above the cap of {cap} GiB"
            ),
        )
    target = min(wanted, cap)
    increase = target - instance.allocated_gib
    new_limit = None
    if instance.autoscaling_enabled and instance.max_allocated_gib is not None:
        needed_limit = _ceil(target * (100.0 + RDS_MIN_STEP_PCT) / 100.0)
        if needed_limit > instance.max_allocated_gib:
            new_limit = min(needed_limit, policy.cap_gib)
    headroom = days_of_headroom(forecast, target, policy)
    sizing = f"grow {instance.allocated_gib} -> {target} GiB (+{increase} GiB)"
    if target < wanted:
        sizing += f", limited by the cap of {cap} GiB (wanted {wanted} GiB)"
    decided: dict[str, Any] = {
        **base,
        "target_gib": target,
        "increase_gib": increase,
        "new_max_allocated_gib": new_limit,
        "monthly_cost_delta": monthly_cost_delta(instance, increase, policy),
        "headroom_days_after": headroom,
    }
    if policy.auto_grow and auto_allowed_now:
        return Decision(**decided, action=GROW_NOW, reason=f"{usage}; {sizing} (automatic growth allowed by policy)")
    why_approval = (
        "automatic growth is off"
        if not policy.auto_grow
        else f"automatic growth not allowed now: {auto_block_reason or 'time policy'}"
    )
    return Decision(**decided, action=REQUEST_APPROVAL, reason=f"{usage}; {sizing}; needs approval ({why_approval})")


def _blocker(
    instance: InstanceStorage, policy: StoragePolicy, now: datetime
) -> tuple[str, str, datetime | None] | None:
    """The first rule that forbids a storage modification right now, if any."""
    if instance.status == "storage-optimization":
        return (
            STORAGE_OPTIMIZATION,
            "storage optimization of the last modification is still in progress",
            None,
        )
    if instance.status not in policy.modifiable_statuses:
        return NOT_AVAILABLE, f"instance status is {instance.status!r}", None
    if instance.pending_allocated_gib is not None:
        return (
            MODIFICATION_PENDING,
            f"a change to {instance.pending_allocated_gib} GiB is already pending",
            None,
        )
    ends = gate.cooldown_until(
        instance.last_storage_change_at, now=now, cooldown=timedelta(hours=policy.cooldown_hours)
    )
    if ends is not None and instance.last_storage_change_at is not None:
        return (
            COOLDOWN,
            f"storage was modified at {instance.last_storage_change_at.isoformat()}; RDS allows the next "
            f"change after {policy.cooldown_hours:g} h ({ends.isoformat()})",
            ends,
        )
    cap = effective_cap_gib(instance, policy)
    if instance.allocated_gib >= cap:
        return CAP_REACHED, f"allocated {instance.allocated_gib} GiB is at the cap of {cap} GiB", None
    return None


def _ceil(value: float) -> int:
    """Ceiling that ignores float noise (100 * 1.1 is 110.00000000000001, and RDS wants 110)."""
    return math.ceil(round(value, 6))


def _eta(forecast: Forecast) -> str:
    if forecast.days_until_full is None:
        return ", not growing"
    return f", full in {forecast.days_until_full:.1f} days at {forecast.growth_bytes_per_day / GIB:.2f} GiB/day"
