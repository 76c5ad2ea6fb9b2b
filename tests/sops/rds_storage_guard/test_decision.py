"""The RDS storage guard's decision table: forecast, state and action for every case of the SOP."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from toilless.common.config import read_defaults
from toilless.sops.rds_storage_guard import forecasting, growth_plan, markers, messages, scoping, storage_policy
from toilless.sops.rds_storage_guard.forecasting import CRITICAL, OK, UNKNOWN, WARNING
from toilless.sops.rds_storage_guard.growth_plan import (
    BLOCKED,
    CAP_REACHED,
    COOLDOWN,
    GROW_NOW,
    MODIFICATION_PENDING,
    NONE,
    NOT_AVAILABLE,
    RECOMMEND_AUTOSCALING,
    REQUEST_APPROVAL,
    STORAGE_OPTIMIZATION,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DAY = 86400.0
#: Last storage change inside / past RDS's six-hour cool-down.
TWO_HOURS_AGO = NOW - timedelta(hours=2)
SEVEN_HOURS_AGO = NOW - timedelta(hours=7)


def history(allocated_gib: int, used_pct_now: float, growth_gib_per_day: float, days: int = 7) -> list:
    """Hourly FreeStorageSpace samples ending at NOW with a constant growth."""
    allocated = allocated_gib * forecasting.GIB
    used_now = allocated * used_pct_now / 100
    end = NOW.timestamp()
    points = []
    for hour in range(days * 24 + 1):
        age_days = (days * 24 - hour) / 24
        used = used_now - growth_gib_per_day * forecasting.GIB * age_days
        points.append((end - age_days * DAY, allocated - used))
    return points


def instance(
    used_pct: float = 50.0,
    growth: float = 0.0,
    allocated: int = 100,
    **kwargs,
) -> forecasting.InstanceStorage:
    defaults = {
        "instance_id": "orders-db",
        "status": "available",
        "storage_type": "gp3",
        "allocated_gib": allocated,
        "free_storage": history(allocated, used_pct, growth),
    }
    defaults.update(kwargs)
    return forecasting.InstanceStorage(**defaults)


def critical(**kwargs) -> forecasting.InstanceStorage:
    """92% used, growing 0.5 GiB a day: critical by usage."""
    return instance(92, 0.5, **kwargs)


POLICY = storage_policy.StoragePolicy()
AUTO = storage_policy.StoragePolicy(auto_grow=True)


@pytest.mark.parametrize(
    ("inst", "policy", "state", "action", "blocked"),
    [
        pytest.param(instance(50, 0.1), POLICY, OK, NONE, None, id="ok-slow-growth"),
        pytest.param(instance(50, 0), POLICY, OK, NONE, None, id="ok-flat"),
        pytest.param(instance(free_storage=()), POLICY, UNKNOWN, NONE, None, id="no-metric-data"),
        pytest.param(instance(82, 0.1), POLICY, WARNING, RECOMMEND_AUTOSCALING, None, id="warning-no-autoscaling"),
        pytest.param(instance(60, 4.0), POLICY, WARNING, RECOMMEND_AUTOSCALING, None, id="warning-by-forecast-only"),
        pytest.param(
            instance(82, 0.1, max_allocated_gib=100),
            POLICY,
            WARNING,
            RECOMMEND_AUTOSCALING,
            None,
            id="warning-autoscaling-limit-reached",
        ),
        pytest.param(
            instance(82, 0.1, max_allocated_gib=300), POLICY, WARNING, NONE, None, id="warning-autoscaling-on"
        ),
        pytest.param(critical(), POLICY, CRITICAL, REQUEST_APPROVAL, None, id="critical-needs-approval"),
        pytest.param(instance(70, 12.0), POLICY, CRITICAL, REQUEST_APPROVAL, None, id="critical-by-forecast"),
        pytest.param(critical(), AUTO, CRITICAL, GROW_NOW, None, id="critical-auto-grow"),
        pytest.param(critical(status="storage-full"), AUTO, CRITICAL, GROW_NOW, None, id="storage-full-grows"),
        pytest.param(critical(allocated=2000), AUTO, CRITICAL, BLOCKED, CAP_REACHED, id="at-cap"),
        pytest.param(critical(allocated=1900), AUTO, CRITICAL, BLOCKED, CAP_REACHED, id="min-step-above-cap"),
        pytest.param(
            critical(allocated=3072, storage_type="standard"),
            storage_policy.StoragePolicy(auto_grow=True, cap_gib=5000),
            CRITICAL,
            BLOCKED,
            CAP_REACHED,
            id="storage-type-maximum",
        ),
        pytest.param(
            critical(last_storage_change_at=TWO_HOURS_AGO), AUTO, CRITICAL, BLOCKED, COOLDOWN, id="within-cooldown"
        ),
        pytest.param(
            critical(last_storage_change_at=SEVEN_HOURS_AGO), AUTO, CRITICAL, GROW_NOW, None, id="after-cooldown"
        ),
        pytest.param(
            critical(status="storage-optimization"),
            AUTO,
            CRITICAL,
            BLOCKED,
            STORAGE_OPTIMIZATION,
            id="storage-optimization",
        ),
        pytest.param(
            critical(pending_allocated_gib=120),
            AUTO,
            CRITICAL,
            BLOCKED,
            MODIFICATION_PENDING,
            id="modification-pending",
        ),
        pytest.param(critical(status="modifying"), AUTO, CRITICAL, BLOCKED, NOT_AVAILABLE, id="modifying"),
        pytest.param(critical(status="stopped"), POLICY, CRITICAL, BLOCKED, NOT_AVAILABLE, id="stopped"),
    ],
)
def test_decision_table(inst, policy, state, action, blocked) -> None:
    decision = growth_plan.decide(inst, policy, now=NOW)
    assert (decision.state, decision.action, decision.blocked_reason) == (state, action, blocked), decision.reason
    if action in (growth_plan.GROW_NOW, growth_plan.REQUEST_APPROVAL):
        assert decision.target_gib is not None
        assert decision.target_gib >= math.ceil(inst.allocated_gib * 1.1)
        assert decision.target_gib <= policy.cap_gib
        assert decision.increase_gib == decision.target_gib - inst.allocated_gib
    else:
        assert decision.target_gib is None
        assert decision.increase_gib == 0


def test_auto_grow_inside_maintenance_window_asks_for_approval() -> None:
    decision = growth_plan.decide(
        instance(92, 0.5),
        AUTO,
        now=NOW,
        auto_allowed_now=False,
        auto_block_reason="inside the maintenance window",
    )
    assert decision.action == growth_plan.REQUEST_APPROVAL
    assert "maintenance window" in decision.reason


def test_cooldown_reports_when_it_ends() -> None:
    changed = NOW - timedelta(hours=2)
    decision = growth_plan.decide(instance(95, 0.5, last_storage_change_at=changed), AUTO, now=NOW)
    assert decision.allowed_from == (changed + timedelta(hours=6)).isoformat()


def test_growth_rate_is_least_squares() -> None:
    forecast = forecasting.forecast_storage(instance(80, 2.0), POLICY)
    assert forecast is not None
    assert forecast.growth_bytes_per_day == pytest.approx(2.0 * forecasting.GIB, rel=1e-6)
    assert forecast.used_pct == pytest.approx(80.0)
    assert forecast.days_until_full == pytest.approx(20 / 2.0, rel=1e-6)


def test_growth_rate_ignores_noise_on_average() -> None:
    points = history(100, 80, 1.0)
    noisy = [
        (t, free + (0.3 * forecasting.GIB if index % 2 else -0.3 * forecasting.GIB))
        for index, (t, free) in enumerate(points)
    ]
    forecast = forecasting.forecast_storage(instance(free_storage=noisy), POLICY)
    assert forecast is not None
    assert forecast.growth_bytes_per_day == pytest.approx(forecasting.GIB, rel=0.05)


def test_trend_restarts_after_a_storage_increase() -> None:
    """Free storage jumps when storage grew: the fit uses only the samples after the jump."""
    before = [(NOW.timestamp() - (48 - h) * 3600, (10 - h * 0.1) * forecasting.GIB) for h in range(24)]
    after = [(NOW.timestamp() - (24 - h) * 3600, (30 - h * 0.1) * forecasting.GIB) for h in range(25)]
    forecast = forecasting.forecast_storage(instance(allocated=110, free_storage=before + after), POLICY)
    assert forecast is not None
    assert forecast.trend_samples == 25
    assert forecast.growth_bytes_per_day == pytest.approx(0.1 * 24 * forecasting.GIB, rel=1e-6)


def test_not_growing_has_no_days_until_full() -> None:
    forecast = forecasting.forecast_storage(instance(50, -1.0), POLICY)
    assert forecast is not None
    assert forecast.days_until_full is None


@pytest.mark.parametrize(
    ("used_pct", "growth", "allocated", "expected"),
    [
        # Slow growth: the 10% minimum step wins.
        pytest.param(91, 0.01, 100, 122, id="headroom-beats-min-step-at-high-usage"),
        # 1000 GiB at 91% and 5 GiB/day: 910 + 150 = 1060 used in 30 days at <= 75% -> 1414 GiB.
        pytest.param(91, 5.0, 1000, 1414, id="headroom-for-fast-growth"),
        # Headroom wants more than the cap (floor(2000) for no autoscaling): limited to the cap.
        pytest.param(95, 40.0, 1000, 2000, id="limited-by-cap"),
    ],
)
def test_target_size(used_pct, growth, allocated, expected) -> None:
    decision = growth_plan.decide(instance(used_pct, growth, allocated=allocated), AUTO, now=NOW)
    assert decision.action == growth_plan.GROW_NOW
    assert decision.target_gib == expected


def test_min_step_is_at_least_ten_percent() -> None:
    assert growth_plan.minimum_target_gib(100, POLICY) == 110
    assert growth_plan.minimum_target_gib(5, POLICY) == 6
    assert growth_plan.minimum_target_gib(100, storage_policy.StoragePolicy(growth_step_pct=25)) == 125
    with pytest.raises(storage_policy.StoragePolicyError, match="below RDS's minimum"):
        storage_policy.StoragePolicy(growth_step_pct=5).validate()


def test_min_step_wins_when_usage_is_flat_and_target_low() -> None:
    policy = storage_policy.StoragePolicy(auto_grow=True, target_used_pct=99, critical_used_pct=95, warning_used_pct=90)
    decision = growth_plan.decide(instance(96, 0.0), policy, now=NOW)
    assert decision.target_gib == 110


def test_autoscaling_limit_rises_with_the_allocation_within_the_cap() -> None:
    decision = growth_plan.decide(instance(92, 0.5, max_allocated_gib=130), AUTO, now=NOW)
    assert decision.action == growth_plan.GROW_NOW
    # 92 GiB used + 0.5 GiB/day x 30 days = 107 GiB at <= 75% -> 143 GiB; the limit must stay 10% above it.
    assert decision.target_gib == 143
    assert decision.new_max_allocated_gib == 158
    capped = growth_plan.decide(
        instance(95, 40.0, allocated=1000, max_allocated_gib=1200), AUTO, now=NOW
    )  # the limit must fit under the cap too
    assert capped.target_gib == math.floor(2000 / 1.1)
    assert capped.new_max_allocated_gib is not None
    assert capped.new_max_allocated_gib <= 2000


@pytest.mark.parametrize(
    ("storage_type", "multi_az", "expected"),
    [
        pytest.param("gp3", False, 22 * 0.115, id="gp3-single-az"),
        pytest.param("gp3", True, 2 * 22 * 0.115, id="gp3-multi-az"),
        pytest.param("io1", False, 22 * 0.125, id="io1"),
    ],
)
def test_monthly_cost_delta(storage_type, multi_az, expected) -> None:
    decision = growth_plan.decide(instance(91, 0.01, storage_type=storage_type, multi_az=multi_az), AUTO, now=NOW)
    assert decision.increase_gib == 22
    assert decision.monthly_cost_delta == pytest.approx(round(expected, 2))


def test_unknown_storage_type_price_is_an_error() -> None:
    with pytest.raises(storage_policy.StoragePolicyError, match="no price per GiB-month"):
        growth_plan.decide(instance(95, 0.5, storage_type="aurora-iopt1"), AUTO, now=NOW)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"warning_used_pct": 95}, "warning", id="warning-above-critical"),
        pytest.param({"critical_used_pct": 120}, "critical", id="critical-above-100"),
        pytest.param({"cap_gib": 0}, "cap_gib", id="zero-cap"),
        pytest.param({"bogus": 1}, "unknown storage policy setting", id="unknown-key"),
    ],
)
def test_bad_policy_is_rejected(overrides, message) -> None:
    with pytest.raises(storage_policy.StoragePolicyError, match=message):
        storage_policy.StoragePolicy.from_config(read_defaults("rds_storage_guard")["policy"], overrides)


def test_config_defaults_build_a_valid_policy() -> None:
    policy = storage_policy.StoragePolicy.from_config(read_defaults("rds_storage_guard")["policy"], {"cap_gib": None})
    assert policy.critical_used_pct == 90
    assert policy.cap_gib == 2000
    assert policy.modifiable_statuses == ("available", "storage-full")


def test_naive_now_is_rejected() -> None:
    with pytest.raises(storage_policy.StoragePolicyError):
        growth_plan.decide(instance(), POLICY, now=datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("alert", "expected"),
    [
        pytest.param({"labels": {"dbinstance_identifier": "orders-db"}}, ["orders-db"], id="cloudwatch-exporter"),
        pytest.param({"labels": {"DBInstanceIdentifier": " db2 "}}, ["db2"], id="aws-style-label"),
        pytest.param({"labels": {"service": "x"}}, [], id="no-instance-label"),
        pytest.param(None, [], id="no-alert"),
    ],
)
def test_instance_ids_from_alert(alert, expected) -> None:
    labels = read_defaults("rds_storage_guard")["alert_instance_labels"]
    assert scoping.instance_ids_from_alert(alert, labels) == expected


@pytest.mark.parametrize(
    ("tag_filter", "expected"),
    [
        pytest.param({"team": "orders"}, True, id="match"),
        pytest.param({"team": "billing"}, False, id="other-value"),
        pytest.param({"team": "*"}, True, id="any-value"),
        pytest.param({"env": "*"}, False, id="missing-key"),
        pytest.param({}, True, id="empty-filter"),
    ],
)
def test_matches_tags(tag_filter, expected) -> None:
    assert scoping.matches_tags([{"Key": "team", "Value": "orders"}], tag_filter) is expected


def test_marker_round_trip() -> None:
    value = markers.marker_value(NOW, "manual__1", 100, 120)
    assert value == "2026-11-20T12:00:00+00:00 from=100 to=120 run=manual__1"
    assert markers.parse_marker(value) == NOW
    assert markers.marker_run(value) == "manual__1"
    assert markers.parse_marker("garbage") is None


@pytest.mark.parametrize(
    "run_id",
    [
        pytest.param("manual__2026-12-01T10:00:00.123456+00:00", id="airflow-manual-run-id"),
        pytest.param('alert__<script>&{"x"}#!$%^*()[]|;,?\'`~', id="every-forbidden-ascii"),
        pytest.param("r" * 400, id="longer-than-a-tag-value"),
        pytest.param("aws:sneaky", id="reserved-prefix-inside"),
        pytest.param("ünïcødé ✓ 🚀", id="unicode-symbols"),
    ],
)
def test_marker_value_always_satisfies_the_rds_tag_contract(run_id: str) -> None:
    """Issue 10 #2: whatever the run id, the marker is a valid RDS tag value and keeps time and sizes readable."""
    from toilless.common.aws_contracts import check_rds_tag

    value = markers.marker_value(NOW, run_id, 100, 120)
    check_rds_tag("toilless:storage-guard-last-change", value)
    assert len(value) <= 256
    assert markers.parse_marker(value) == NOW
    assert " from=100 to=120 " in value


def test_approval_text_says_permanent_and_cost() -> None:
    decision = growth_plan.decide(instance(91, 0.01, multi_az=True), POLICY, now=NOW).as_dict()
    subject, body = messages.approval_text([decision], 60)
    assert "orders-db" in subject
    assert "permanent" in body.lower()
    assert "100 GiB -> **122 GiB** (+22 GiB)" in body
    assert "+5.06 USD/month" in body
    assert "60 minutes" in body
