"""The RDS storage-guard SOP as pure logic: forecast, classify, and decide what to do. No Airflow, no boto3.

RDS facts the decision follows (AWS RDS user guide, "Working with storage for Amazon RDS DB instances"):

* allocated storage can only grow; an increase is permanent and must be at least 10% of the current allocation;
* after a storage modification, the next one has to wait six hours, or until storage optimization has finished,
  whichever is longer (status ``storage-optimization``);
* with storage autoscaling on (``MaxAllocatedStorage`` set), the autoscaling limit must stay at least 10% above the
  allocation, so the limit has to be raised with the allocation when it would fall below that.

The DAG ``rds_storage_guard`` gathers an :class:`InstanceStorage` per instance (describe_db_instances + CloudWatch
``FreeStorageSpace``), calls :func:`decide`, and acts on the returned :class:`Decision`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from toilless.common import aws_contracts, gate
from toilless.common.errors import InvalidInput
from toilless.common.policy_params import AT_LEAST, AT_MOST, FREE, OFF_ONLY, ParamRule, tighten

GIB = 1024**3
SECONDS_PER_DAY = 86400.0
#: RDS refuses an increase below 10% of the current allocation.
RDS_MIN_STEP_PCT = 10.0

# States
OK = "ok"
WARNING = "warning"
CRITICAL = "critical"
UNKNOWN = "unknown"
STATE_RANK = {OK: 0, UNKNOWN: 1, WARNING: 2, CRITICAL: 3}

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


class StoragePolicyError(InvalidInput):
    """A storage-guard setting or Param is out of range; the message names it."""


@dataclass(frozen=True)
class StoragePolicy:
    """Thresholds and limits of the storage guard (include/config/rds_storage_guard.yaml, Params override)."""

    warning_used_pct: float = 80.0
    critical_used_pct: float = 90.0
    #: Warn early: days until full at or below which the state is at least warning / critical.
    warning_days: float = 14.0
    critical_days: float = 3.0
    #: Minimum growth step in percent of the current allocation (never below RDS's 10%).
    growth_step_pct: float = RDS_MIN_STEP_PCT
    #: A growth must last this many days at the measured growth rate ...
    headroom_days: float = 30.0
    #: ... with used storage still at or below this percentage at the end of them.
    target_used_pct: float = 75.0
    #: Never allocate more than this (GiB); the storage type's own maximum applies too.
    cap_gib: int = 2000
    auto_grow: bool = False
    cooldown_hours: float = 6.0
    modifiable_statuses: tuple[str, ...] = ("available", "storage-full")
    storage_type_max_gib: Mapping[str, int] = field(
        default_factory=lambda: {"gp2": 65536, "gp3": 65536, "io1": 65536, "io2": 65536, "standard": 3072}
    )
    price_per_gib_month: Mapping[str, float] = field(
        default_factory=lambda: {"gp2": 0.115, "gp3": 0.115, "io1": 0.125, "io2": 0.125, "standard": 0.10}
    )
    currency: str = "USD"
    #: A rise of free storage by more than this fraction of the allocation starts a new trend segment
    #: (a storage increase or a large clean-up): the growth rate is fitted after the last such jump.
    trend_break_fraction: float = 0.05

    @classmethod
    def from_config(cls, settings: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> StoragePolicy:
        """Build from the ``policy`` section of the config; ``overrides`` win when not None.

        ``overrides`` are trusted values (tests, already-tightened settings): run Params go through
        :func:`policy_from_params`, which refuses any that loosens the configured policy.
        """
        merged = {key: value for key, value in settings.items() if key in cls.__dataclass_fields__}
        for key, value in (overrides or {}).items():
            if value is not None:
                if key not in cls.__dataclass_fields__:
                    raise StoragePolicyError(f"unknown storage policy setting {key!r}")
                merged[key] = value
        if "modifiable_statuses" in merged:
            merged["modifiable_statuses"] = tuple(merged["modifiable_statuses"])
        policy = cls(**merged)
        policy.validate()
        return policy

    def validate(self) -> None:
        if not 0 < self.warning_used_pct < self.critical_used_pct <= 100:
            raise StoragePolicyError(
                f"thresholds must satisfy 0 < warning ({self.warning_used_pct}) < critical "
                f"({self.critical_used_pct}) <= 100"
            )
        if self.growth_step_pct < RDS_MIN_STEP_PCT:
            raise StoragePolicyError(
                f"growth step {self.growth_step_pct}% is below RDS's minimum increase of {RDS_MIN_STEP_PCT}%"
            )
        if not 0 < self.target_used_pct < 100:
            raise StoragePolicyError(f"target_used_pct {self.target_used_pct} must be between 0 and 100")
        if self.cap_gib <= 0:
            raise StoragePolicyError(f"cap_gib {self.cap_gib} must be positive")
        if self.headroom_days < 0 or self.cooldown_hours < 0 or self.critical_days < 0 or self.warning_days < 0:
            raise StoragePolicyError("headroom_days, cooldown_hours, warning_days and critical_days must be >= 0")


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


# -- forecasting -------------------------------------------------------------------------------------------------


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


# -- sizing --------------------------------------------------------------------------------------------------------


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


# -- the decision --------------------------------------------------------------------------------------------------


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


# -- input parsing -------------------------------------------------------------------------------------------------


def instance_ids_from_alert(alert: Mapping[str, Any] | None, label_names: Iterable[str]) -> list[str]:
    """The instance id an RDS alert carries in its labels (first label name that is set)."""
    if not alert:
        return []
    labels = alert.get("labels") or {}
    for name in label_names:
        value = labels.get(name)
        if isinstance(value, str) and value.strip():
            return [value.strip()]
    return []


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


def matches_tags(tag_list: Iterable[Mapping[str, str]], tag_filter: Mapping[str, str]) -> bool:
    """True if every ``key: value`` of the filter is among the instance's tags (value ``*`` = any value)."""
    tags = {tag.get("Key"): tag.get("Value") for tag in tag_list}
    return all(key in tags and (value == "*" or tags[key] == value) for key, value in tag_filter.items())


def parse_marker(value: str) -> datetime | None:
    """The time in an idempotency marker tag value ``<ISO time> run=<run id> from=<GiB> to=<GiB>``."""
    try:
        moment = datetime.fromisoformat(value.split(" ", 1)[0])
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def marker_run(value: str) -> str | None:
    """The (tag-safe) run id in a marker value, or None."""
    for part in value.split(" "):
        if part.startswith("run="):
            return part[4:]
    return None


def marker_value(moment: datetime, run_id: str, from_gib: int, to_gib: int) -> str:
    """Tag value recording a storage change this guard requested, within RDS's tag contract.

    RDS tag values hold only letters, digits, white space and ``_ . : / = + - @`` (at most 256 characters): the run
    id (outside text: a REST caller chooses it) is made tag-safe, and the sizes are ``from=`` / ``to=`` (not ``->``).
    The time comes first and the sizes before the run id, so cutting a long run id keeps what the guard reads.
    """
    head = f"{moment.astimezone(UTC).isoformat(timespec='seconds')} from={from_gib} to={to_gib} run="
    value = head + aws_contracts.tag_safe(run_id, max_length=aws_contracts.TAG_VALUE_MAX - len(head))
    aws_contracts.check_rds_tag("toilless-marker", value)
    return value


# -- per-run Params: tighten only --------------------------------------------------------------------------------


def param_rules(auto_grow: bool) -> tuple[ParamRule, ...]:
    """How each Param of rds_storage_guard relates to the configured policy.

    The critical threshold permits an automatic growth only when automatic growth is on; with it off, a lower
    threshold only asks a person sooner (an approval request changes nothing), so it is free then.
    """
    return (
        ParamRule("auto_grow", "auto_grow", OFF_ONLY, "automatic growth without approval"),
        ParamRule("growth_step_pct", "growth_step_pct", AT_MOST, "smallest growth step"),
        ParamRule("cap_gib", "cap_gib", AT_MOST, "largest allocation"),
        ParamRule("critical_pct", "critical_used_pct", AT_LEAST if auto_grow else FREE, "% used before growing"),
        ParamRule("warning_pct", "warning_used_pct", FREE, "reporting only"),
    )


def policy_from_params(settings: Mapping[str, Any], params: Mapping[str, Any]) -> tuple[StoragePolicy, list[str]]:
    """The run's policy: the configured ``policy`` section, tightened (never loosened) by the run's Params.

    Raises :class:`LooseningParamError` for a Param that would loosen it, :class:`StoragePolicyError` for an invalid
    result (e.g. warning above critical).
    """
    configured = StoragePolicy.from_config(settings)
    auto_param = params.get("auto_grow")
    effective_auto = configured.auto_grow and auto_param is not False
    current = {name: getattr(configured, name) for name in configured.__dataclass_fields__}
    merged, notes = tighten(current, params, param_rules(effective_auto), config_name="rds_storage_guard")
    policy = StoragePolicy.from_config(settings, {key: merged[key] for key in merged if merged[key] != current[key]})
    return policy, notes


def growth_gate_policy(
    settings: Mapping[str, Any],
    toilless_config: Mapping[str, Any],
    *,
    dry_run: bool,
    automatic: bool,
) -> gate.GatePolicy:
    """What a storage growth must respect at the moment it acts.

    Every growth: dry run and RDS's cool-down. An automatic growth also: the maintenance window (unless
    ``respect_maintenance_window`` is off) and the circuit breaker (``gate.circuit_breaker``). A growth a person
    approved in this run was asked for precisely because policy did not allow it automatically, so time windows and
    the breaker do not apply to it. Storage growth has no business hours: a full disk does not wait for Monday.
    """
    automatic_windows = automatic and bool(settings.get("respect_maintenance_window", True))
    timing = gate.time_policy(toilless_config, None, business_hours=False, maintenance_window=automatic_windows)
    gate_settings = dict(settings.get("gate") or {})
    if not automatic:
        gate_settings.pop("circuit_breaker", None)
    return gate.gate_policy(
        gate_settings,
        dry_run=dry_run,
        time=timing,
        cooldown=timedelta(hours=float(settings["policy"]["cooldown_hours"])),
    )


# -- messages -----------------------------------------------------------------------------------------------------


def approval_text(decisions: Sequence[Mapping[str, Any]], timeout_minutes: float) -> tuple[str, str]:
    """Subject and Markdown body of the approval request: what changes, that it is permanent, what it costs."""
    ids = ", ".join(d["instance_id"] for d in decisions)
    subject = f"Grow RDS storage (permanent): {ids}"
    lines = [
        "The RDS storage guard asks to **increase allocated storage**. This is **permanent**: RDS cannot shrink "
        "allocated storage afterwards.",
        "",
    ]
    total = 0.0
    for d in decisions:
        total += d["monthly_cost_delta"]
        forecast = d.get("forecast") or {}
        lines.append(
            f"- `{d['instance_id']}` ({d['storage_type']}{', Multi-AZ' if d.get('multi_az') else ''}): "
            f"{d['allocated_gib']} GiB -> **{d['target_gib']} GiB** (+{d['increase_gib']} GiB), "
            f"+{d['monthly_cost_delta']:.2f} {d['currency']}/month; now {forecast.get('used_pct', 0):.1f}% used"
            + _days_text(forecast)
        )
        if d.get("new_max_allocated_gib"):
            lines.append(f"  - storage autoscaling limit rises to {d['new_max_allocated_gib']} GiB as well")
    currency = decisions[0]["currency"] if decisions else "USD"
    lines += [
        "",
        f"Total monthly cost delta: **+{total:.2f} {currency}/month**.",
        f"Approve to apply immediately. Reject, or no answer within {timeout_minutes:g} minutes, changes nothing.",
    ]
    return subject, "\n".join(lines)


def _days_text(forecast: Mapping[str, Any]) -> str:
    days = forecast.get("days_until_full")
    return f", full in {days:.1f} days" if days is not None else ""


def instance_line(decision: Mapping[str, Any]) -> str:
    """One report line: state, forecast and the decided action."""
    action = decision["action"]
    label = {
        NONE: "no action",
        RECOMMEND_AUTOSCALING: "recommend storage autoscaling",
        REQUEST_APPROVAL: f"approval requested to grow to {decision.get('target_gib')} GiB",
        GROW_NOW: f"automatic growth to {decision.get('target_gib')} GiB",
        BLOCKED: f"blocked ({decision.get('blocked_reason')})",
    }.get(action, action)
    return (
        f"`{decision['instance_id']}` {decision['state'].upper()} ({decision['allocated_gib']} GiB "
        f"{decision['storage_type']}): {label}. {decision['reason']}"
    )


def worst_state(states: Iterable[str]) -> str:
    return max(states, key=lambda state: STATE_RANK.get(state, 0), default=OK)


# -- per-run scope: Params may narrow the configured instances, never widen them -----------------------------------


class ScopeParamError(InvalidInput):
    """A run Param (instance ids, tag filter, region) reaches outside the configured scope."""


@dataclass(frozen=True)
class RunScope:
    """Which instances a run looks at, and whether automatic growth may act on them.

    ``automatic_growth`` is False when a Param chose instances the configuration does not select (the configuration
    names no instances, tag filter or region): those may still be grown, but only with a person's approval.
    """

    instance_ids: tuple[str, ...]
    tag_filter: dict[str, str]
    region: str | None
    automatic_growth: bool
    notes: tuple[str, ...] = ()


def run_scope(
    settings: Mapping[str, Any], params: Mapping[str, Any], alert_instance_ids: Sequence[str] = ()
) -> RunScope:
    """The run's scope: the configured ``instance_ids`` / ``tag_filter`` / ``region``, narrowed by the run's Params.

    Rule (one for every scope Param): a Param may only narrow an explicitly configured scope; anything outside it is
    refused (:class:`ScopeParamError`, not retried). Where the configuration sets no explicit scope (every instance
    of the region), automatic growth applies only to what the configuration selects: a run aimed by Params at chosen
    instances, tags or a region still decides, but every growth needs a person's approval.
    Instance ids from an alert are checked against an explicit configured scope the same way.
    """
    configured_ids = [str(i) for i in settings.get("instance_ids") or []]
    configured_tags = {str(k): str(v) for k, v in dict(settings.get("tag_filter") or {}).items()}
    configured_region = settings.get("region") or None
    param_ids = [str(i) for i in alert_instance_ids or params.get("instance_ids") or []]
    param_tags = {str(k): str(v) for k, v in dict(params.get("tag_filter") or {}).items()}
    param_region = params.get("region") or None
    from_alert = bool(alert_instance_ids)
    explicit = bool(configured_ids or configured_tags)
    notes: list[str] = []
    automatic = True

    if param_region and param_region != configured_region:
        if configured_region:
            raise ScopeParamError(
                f"Param region {param_region!r} is outside the configured region {configured_region!r}: a run may "
                "only narrow the configured scope. Change region in include/config/rds_storage_guard.yaml or the "
                "Variable toilless_rds_storage_guard instead."
            )
        automatic = False
        notes.append(f"region {param_region} chosen by Param: growth needs approval")
    region = param_region or configured_region

    if configured_ids:
        outside = sorted(set(param_ids) - set(configured_ids))
        if outside:
            raise ScopeParamError(
                f"instance(s) {', '.join(outside)} are not among the configured instance_ids: a run may only "
                "narrow the configured scope. Add them to instance_ids in the configuration instead."
            )
        ids = param_ids or configured_ids
        # A tag filter Param on top of configured ids only drops instances.
        return RunScope(tuple(ids), param_tags, region, automatic, tuple(notes))

    if configured_tags:
        for key, value in param_tags.items():
            if key in configured_tags and value != "*" and configured_tags[key] not in ("*", value):
                raise ScopeParamError(
                    f"Param tag_filter {key}={value!r} is outside the configured tag filter "
                    f"{key}={configured_tags[key]!r}: a run may only narrow the configured scope."
                )
        # Every configured condition stays; a Param adds conditions or pins a configured "*" to one value.
        tags = dict(configured_tags)
        for key, value in param_tags.items():
            if value != "*" or key not in tags:
                tags[key] = value
        # Requested ids that the configured filter does not select are refused after describing (check_in_scope).
        return RunScope(tuple(param_ids), tags, region, automatic, tuple(notes))

    if not explicit and (param_tags or (param_ids and not from_alert)):
        automatic = False
        notes.append("instances chosen by Param (the configuration selects every instance): growth needs approval")
    if param_ids:
        return RunScope(tuple(param_ids), {}, region, automatic, tuple(notes))
    return RunScope((), param_tags, region, automatic, tuple(notes))


def check_in_scope(requested_ids: Sequence[str], found_ids: Iterable[str], tag_filter: Mapping[str, str]) -> None:
    """Refuse requested instances that exist but the configured tag filter does not select."""
    outside = sorted(set(requested_ids) - set(found_ids))
    if outside and tag_filter:
        raise ScopeParamError(
            f"instance(s) {', '.join(outside)} do not match the configured tag filter {dict(tag_filter)}: a run may "
            "only narrow the configured scope."
        )
