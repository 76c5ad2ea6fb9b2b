"""Hostile run Params against every acting DAG: a Param may tighten the configured policy, never loosen it.

Pure level (the functions the DAGs call in their first deciding step); the DAG-level proof that a refused Param
fails the run at once and grows nothing is tests/safety/test_hostile_params_dag.py.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from toilless.common.config import LooseningParamError, deep_merge, read_defaults
from toilless.common.policies import WeeklyWindow, window_is_within
from toilless.sops.order_backlog_check.settings import SettingsError, resolve_settings
from toilless.sops.rds_storage_guard import forecasting, growth_plan, storage_policy

NOW = datetime.now(UTC)
CONFIGURED = read_defaults("rds_storage_guard")["policy"]  # auto_grow off, cap 2000, step 10
AUTO_ON = {**CONFIGURED, "auto_grow": True}


def critical_instance(allocated_gib: int = 100, used_pct: float = 95.0) -> forecasting.InstanceStorage:
    allocated = allocated_gib * forecasting.GIB
    free = [(NOW.timestamp() - hours * 3600, allocated * (100 - used_pct) / 100) for hours in range(48, -1, -1)]
    return forecasting.InstanceStorage("orders-db", "available", "gp3", allocated_gib, free_storage=free)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"auto_grow": True, "growth_step_pct": 60000, "cap_gib": 1e9}, id="issue-10-all-three"),
        pytest.param({"auto_grow": True}, id="auto-grow-on"),
        pytest.param({"growth_step_pct": 60000}, id="huge-step"),
        pytest.param({"growth_step_pct": 10.5}, id="step-just-above-configured"),
        pytest.param({"cap_gib": 1e9}, id="huge-cap"),
        pytest.param({"cap_gib": 2001}, id="cap-one-above"),
        pytest.param({"cap_gib": float("inf")}, id="infinite-cap"),
        pytest.param({"cap_gib": float("nan")}, id="nan-cap"),
        pytest.param({"cap_gib": "1e9"}, id="cap-as-string"),
        pytest.param({"auto_grow": "true"}, id="auto-grow-as-string"),
        pytest.param({"auto_grow": 1}, id="auto-grow-as-number"),
    ],
)
def test_rds_loosening_params_are_refused(params: dict[str, Any]) -> None:
    with pytest.raises(LooseningParamError):
        storage_policy.policy_from_params(CONFIGURED, params)


def test_rds_lower_critical_threshold_refused_when_growth_is_automatic() -> None:
    with pytest.raises(LooseningParamError, match="critical_pct"):
        storage_policy.policy_from_params(AUTO_ON, {"critical_pct": 50})
    # Switching automatic growth off in the same run makes a lower threshold harmless: it only asks a person.
    policy, _ = storage_policy.policy_from_params(AUTO_ON, {"critical_pct": 50, "warning_pct": 40, "auto_grow": False})
    assert policy.critical_used_pct == 50
    assert policy.auto_grow is False


@pytest.mark.parametrize(
    ("configured", "params", "action", "max_target"),
    [
        pytest.param(CONFIGURED, {}, growth_plan.REQUEST_APPROVAL, 2000, id="configured-off-asks"),
        pytest.param(
            CONFIGURED, {"critical_pct": 85}, growth_plan.REQUEST_APPROVAL, 2000, id="demo-lower-threshold-asks"
        ),
        pytest.param(AUTO_ON, {}, growth_plan.GROW_NOW, 2000, id="configured-on-grows"),
        pytest.param(AUTO_ON, {"auto_grow": False}, growth_plan.REQUEST_APPROVAL, 2000, id="param-switches-auto-off"),
        pytest.param(AUTO_ON, {"cap_gib": 120}, growth_plan.GROW_NOW, 120, id="param-lowers-cap"),
        pytest.param(
            AUTO_ON, {"critical_pct": 96}, growth_plan.RECOMMEND_AUTOSCALING, None, id="param-raises-threshold"
        ),
    ],
)
def test_rds_tightening_params_apply(configured, params, action, max_target) -> None:
    policy, _ = storage_policy.policy_from_params(configured, params)
    decision = growth_plan.decide(critical_instance(), policy, now=NOW)
    assert decision.action == action
    if max_target is not None:
        assert decision.target_gib is not None
        assert decision.target_gib <= max_target


def test_rds_seeded_fuzz_never_yields_an_unapproved_or_oversized_growth() -> None:
    """Any mix of Params: either refused, or no automatic growth (configured off) and never past the configured cap."""
    rng = random.Random(20261201)
    choices: dict[str, list[Any]] = {
        "auto_grow": [None, True, False],
        "growth_step_pct": [None, 10, 10.0, 9, 11, 100, 60000, 1e308, -5],
        "cap_gib": [None, 1, 50, 120, 2000, 2001, 10**9, -1, 0],
        "critical_pct": [None, 2, 50, 85, 90, 95, 100, 101],
        "warning_pct": [None, 1, 40, 80, 89, 99],
    }
    refused = applied = 0
    for _ in range(600):
        params = {name: rng.choice(values) for name, values in choices.items()}
        try:
            policy, _ = storage_policy.policy_from_params(CONFIGURED, params)
        except (LooseningParamError, storage_policy.StoragePolicyError):
            refused += 1
            continue
        applied += 1
        decision = growth_plan.decide(critical_instance(rng.choice([50, 100, 1000])), policy, now=NOW)
        assert decision.action != growth_plan.GROW_NOW, params
        assert policy.cap_gib <= CONFIGURED["cap_gib"]
        assert policy.growth_step_pct <= CONFIGURED["growth_step_pct"]
        if decision.target_gib is not None:
            assert decision.target_gib <= CONFIGURED["cap_gib"], params
    assert refused > 0
    assert applied > 0


# -- order_backlog_check --------------------------------------------------------------------------------------------


def backlog_settings(tmp_path: Path, params: dict[str, Any], **config_overrides: Any) -> dict[str, Any]:
    config = deep_merge(
        read_defaults("order_backlog_check"),
        {"log": {"allowed_roots": [str(tmp_path)], "path": str(tmp_path / "order_processing.log")}, **config_overrides},
    )
    return resolve_settings(config, read_defaults("toilless"), params)


@pytest.mark.parametrize(
    ("params", "config", "fragment"),
    [
        pytest.param({"stuck_error_repeats": 2}, {}, "stuck_error_repeats", id="stuck-sooner"),
        pytest.param({"business_hours_start": "00:00"}, {}, "wider than the configured", id="earlier-start"),
        pytest.param({"business_hours_end": "23:59"}, {}, "wider than the configured", id="later-end"),
        pytest.param({"business_hours_days": ["saturday", "sunday"]}, {}, "wider", id="weekend"),
        pytest.param({"business_hours_timezone": "Pacific/Kiritimati"}, {}, "wider", id="timezone-shift"),
        pytest.param(
            {
                "business_hours_days": ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
                "business_hours_start": "00:00",
                "business_hours_end": "23:59",
                "business_hours_timezone": "UTC",
            },
            {},
            "wider",
            id="always",
        ),
        pytest.param({"allow_restart": True}, {"restart": {"allow": False}}, "allow_restart", id="restart-on"),
    ],
)
def test_backlog_loosening_params_are_refused(tmp_path: Path, params, config, fragment) -> None:
    with pytest.raises(SettingsError, match=fragment):
        backlog_settings(tmp_path, params, **config)


@pytest.mark.parametrize(
    ("params", "check"),
    [
        pytest.param(
            {"stuck_error_repeats": 10}, lambda s: s["thresholds"]["stuck_error_repeats"] == 10, id="stuck-later"
        ),
        pytest.param({"allow_restart": False}, lambda s: s["allow_restart"] is False, id="restart-off"),
        pytest.param(
            {"outstanding_threshold": 1}, lambda s: s["thresholds"]["outstanding_orders"] == 1, id="notify-only"
        ),
        pytest.param(
            {"business_hours_days": ["tuesday"], "business_hours_start": "10:00", "business_hours_end": "12:00"},
            lambda s: s["run_business_hours"]["days"] == ["tuesday"] and s["business_hours"]["start"] == "09:00",
            id="narrower-hours",
        ),
    ],
)
def test_backlog_tightening_params_apply(tmp_path: Path, params, check) -> None:
    assert check(backlog_settings(tmp_path, params))


def test_backlog_seeded_fuzz_of_business_hours_never_widens_them(tmp_path: Path) -> None:
    rng = random.Random(1201)
    configured = WeeklyWindow.from_config(read_defaults("toilless")["business_hours"])
    days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    accepted = refused = 0
    for _ in range(40):
        params = {
            "business_hours_days": rng.sample(days, rng.randint(1, 7)) if rng.random() < 0.7 else None,
            "business_hours_start": f"{rng.randint(0, 23):02d}:{rng.choice([0, 30, 59]):02d}"
            if rng.random() < 0.7
            else None,
            "business_hours_end": f"{rng.randint(0, 23):02d}:{rng.choice([0, 30, 59]):02d}"
            if rng.random() < 0.7
            else None,
            "business_hours_timezone": rng.choice([None, "UTC", "Europe/Berlin", "Asia/Tokyo"]),
        }
        try:
            resolved = backlog_settings(tmp_path, params)
        except SettingsError:
            refused += 1
            continue
        accepted += 1
        if resolved["run_business_hours"]:
            window = WeeklyWindow.from_config(resolved["run_business_hours"])
            # Checked for the week the run is in (offsets between timezones change with daylight saving time);
            # at the moment of acting the gate applies both windows anyway.
            assert window_is_within(window, configured, start=NOW), params
    assert refused > 0
    assert accepted > 0
