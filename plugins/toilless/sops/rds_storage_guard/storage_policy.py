"""The storage guard's policy: thresholds, growth step, cap and cool-down; per-run Params may only tighten it.

RDS facts the policy follows (AWS RDS user guide, "Working with storage for Amazon RDS DB instances"): an increase
is permanent and at least 10% of the current allocation; after a storage modification the next one waits six hours
(or until storage optimization has finished).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from toilless.common import gate
from toilless.common.config import AT_LEAST, AT_MOST, FREE, OFF_ONLY, ParamRule, tighten
from toilless.common.errors import InvalidInput

#: RDS refuses an increase below 10% of the current allocation.
RDS_MIN_STEP_PCT = 10.0


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
