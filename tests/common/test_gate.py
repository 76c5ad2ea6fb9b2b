"""The action gate: each check alone, their order, and allowed_from when several refuse at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from toilless.common import gate
from toilless.common.gate import GateConfigError, GatePolicy, TargetHistory, check_action
from toilless.common.policies import WeeklyWindow

# A Monday, 10:00 UTC: inside weekday business hours, outside the Sunday maintenance window.
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
MAINTENANCE = WeeklyWindow.from_config({"days": ["sunday"], "start": "02:00", "end": "04:00", "timezone": "UTC"})
HOURS = WeeklyWindow.from_config({"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"})
MORNINGS = WeeklyWindow.from_config({"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "12:00"})
FULL = GatePolicy(
    business_hours=(HOURS,),
    maintenance_window=MAINTENANCE,
    cooldown=timedelta(hours=1),
    breaker_max_actions=2,
    breaker_window=timedelta(hours=24),
)


@pytest.mark.parametrize(
    ("now", "policy", "history", "allowed", "check", "allowed_from"),
    [
        pytest.param(MONDAY_10, FULL, TargetHistory(), True, gate.ALLOWED, None, id="all-clear"),
        pytest.param(
            MONDAY_10, GatePolicy(dry_run=True), TargetHistory(), False, gate.DRY_RUN, None, id="dry-run-refuses"
        ),
        pytest.param(
            MONDAY_10,
            FULL,
            TargetHistory(incident_done=True, incident_note="restarted 09:12"),
            False,
            gate.ONCE_PER_INCIDENT,
            None,
            id="once-per-incident",
        ),
        pytest.param(
            MONDAY_10,
            FULL,
            TargetHistory(last_action_at=MONDAY_10 - timedelta(minutes=20)),
            False,
            gate.COOLDOWN,
            MONDAY_10 + timedelta(minutes=40),
            id="cooldown-running",
        ),
        pytest.param(
            MONDAY_10,
            FULL,
            TargetHistory(last_action_at=MONDAY_10 - timedelta(hours=1)),
            True,
            gate.ALLOWED,
            None,
            id="cooldown-just-over",
        ),
        pytest.param(
            MONDAY_10,
            FULL,
            TargetHistory(recent_actions=(MONDAY_10 - timedelta(hours=20), MONDAY_10 - timedelta(hours=3))),
            False,
            gate.CIRCUIT_BREAKER,
            MONDAY_10 + timedelta(hours=4),
            id="breaker-open-until-oldest-leaves-window",
        ),
        pytest.param(
            MONDAY_10,
            FULL,
            TargetHistory(recent_actions=(MONDAY_10 - timedelta(hours=25), MONDAY_10 - timedelta(hours=3))),
            True,
            gate.ALLOWED,
            None,
            id="breaker-old-action-outside-window",
        ),
        pytest.param(
            datetime(2026, 11, 22, 3, 0, tzinfo=UTC),
            GatePolicy(maintenance_window=MAINTENANCE),
            TargetHistory(),
            False,
            gate.TIME_POLICY,
            datetime(2026, 11, 22, 4, 0, tzinfo=UTC),
            id="maintenance-window",
        ),
        pytest.param(
            datetime(2026, 11, 23, 18, 0, tzinfo=UTC),
            FULL,
            TargetHistory(),
            False,
            gate.TIME_POLICY,
            datetime(2026, 11, 24, 9, 0, tzinfo=UTC),
            id="after-business-hours",
        ),
        pytest.param(
            datetime(2026, 11, 23, 13, 0, tzinfo=UTC),
            GatePolicy(business_hours=(HOURS, MORNINGS)),
            TargetHistory(),
            False,
            gate.TIME_POLICY,
            datetime(2026, 11, 24, 9, 0, tzinfo=UTC),
            id="narrower-run-hours-apply-on-top",
        ),
        pytest.param(
            datetime(2026, 11, 23, 16, 30, tzinfo=UTC),
            FULL,
            TargetHistory(last_action_at=datetime(2026, 11, 23, 16, 0, tzinfo=UTC)),
            False,
            gate.COOLDOWN,
            datetime(2026, 11, 24, 9, 0, tzinfo=UTC),
            id="cooldown-ends-after-hours-so-next-morning",
        ),
    ],
)
def test_gate_verdicts(now, policy, history, allowed, check, allowed_from) -> None:
    verdict = check_action("restart", "orders/order-processor", now=now, policy=policy, history=history)
    assert verdict.allowed is allowed
    assert verdict.check == check
    assert verdict.allowed_from == allowed_from
    assert verdict.reason
    as_dict = verdict.as_dict()
    assert as_dict["allowed"] is allowed
    assert as_dict["target"] == "orders/order-processor"


def test_every_refusal_is_listed_and_the_first_one_explains() -> None:
    verdict = check_action(
        "restart",
        "t",
        now=datetime(2026, 11, 23, 18, 0, tzinfo=UTC),
        policy=FULL,
        history=TargetHistory(
            last_action_at=datetime(2026, 11, 23, 17, 30, tzinfo=UTC),
            recent_actions=(datetime(2026, 11, 23, 8, 0, tzinfo=UTC), datetime(2026, 11, 23, 17, 30, tzinfo=UTC)),
        ),
    )
    assert verdict.refusals == (gate.CIRCUIT_BREAKER, gate.COOLDOWN, gate.TIME_POLICY)
    assert verdict.reason.startswith("circuit breaker open")
    # Breaker closes Tuesday 08:00, business hours open 09:00: the earliest moment all pass.
    assert verdict.allowed_from == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def test_dry_run_wins_over_everything() -> None:
    verdict = check_action(
        "grow",
        "db",
        now=MONDAY_10,
        policy=GatePolicy(dry_run=True, maintenance_window=MAINTENANCE),
        history=TargetHistory(incident_done=True),
    )
    assert verdict.check == gate.DRY_RUN
    assert "dry run" in verdict.reason


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        check_action("x", "y", now=datetime(2026, 11, 23, 10, 0), policy=GatePolicy())


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"cooldown": timedelta(minutes=-1)}, id="negative-cooldown"),
        pytest.param({"breaker_max_actions": 0}, id="breaker-zero"),
        pytest.param({"breaker_window": timedelta(0)}, id="breaker-window-zero"),
    ],
)
def test_bad_gate_policy_is_refused(kwargs) -> None:
    with pytest.raises(GateConfigError):
        GatePolicy(**kwargs)


def test_history_round_trip_keeps_recent_only_and_is_tag_safe() -> None:
    from toilless.common.aws_contracts import check_rds_tag

    actions = [MONDAY_10 - timedelta(days=days) for days in (10, 3, 1, 0)]
    text = gate.encode_history(actions, now=MONDAY_10, keep=timedelta(days=7))
    check_rds_tag("toilless:storage-guard-history", text)
    assert gate.decode_history(text) == tuple(actions[1:])
    assert gate.decode_history("garbage 12x") == ()


def test_history_is_bounded() -> None:
    actions = [MONDAY_10 - timedelta(minutes=minutes) for minutes in range(100)]
    assert len(gate.decode_history(gate.encode_history(actions, now=MONDAY_10, keep=timedelta(days=1)))) == 20


@pytest.mark.parametrize(
    ("toilless_config", "sop_config", "expected_window"),
    [
        pytest.param({"maintenance_window": None}, None, None, id="none-configured"),
        pytest.param(
            {"maintenance_window": {"days": ["sunday"], "start": "02:00", "end": "04:00"}},
            {"maintenance_window": None},
            "Sunday 02:00-04:00 UTC",
            id="install-wide",
        ),
        pytest.param(
            {"maintenance_window": {"days": ["sunday"], "start": "02:00", "end": "04:00"}},
            {"maintenance_window": {"days": ["saturday"], "start": "01:00", "end": "02:00"}},
            "Saturday 01:00-02:00 UTC",
            id="sop-override",
        ),
    ],
)
def test_one_place_resolves_the_maintenance_window(toilless_config, sop_config, expected_window) -> None:
    window = gate.maintenance_window(toilless_config, sop_config)
    assert (window.describe() if window else None) == expected_window


def test_bad_window_is_a_config_error() -> None:
    with pytest.raises(GateConfigError, match="maintenance window"):
        gate.time_policy({"maintenance_window": {"days": ["someday"], "start": "02:00", "end": "04:00"}})


def test_gate_policy_from_settings() -> None:
    timing = gate.time_policy({"business_hours": {"days": ["mon"], "start": "09:00", "end": "17:00"}})
    policy = gate.gate_policy(
        {"cooldown_minutes": 30, "circuit_breaker": {"max_actions": 3, "window_hours": 12}},
        dry_run=False,
        time=timing,
        extra_business_hours=[MORNINGS],
    )
    assert policy.cooldown == timedelta(minutes=30)
    assert policy.breaker_max_actions == 3
    assert policy.breaker_window == timedelta(hours=12)
    assert len(policy.business_hours) == 2
    with pytest.raises(GateConfigError):
        gate.gate_policy({"circuit_breaker": {"max_actions": "many"}}, dry_run=False, time=timing)


SUNDAY_WINDOW = {"days": ["sunday"], "start": "02:00", "end": "04:00"}
WEEKDAYS = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}


@pytest.mark.parametrize(
    ("settings", "kwargs", "window", "hours", "dry_run"),
    [
        pytest.param({"dry_run": False}, {}, "Sunday 02:00-04:00 UTC", 0, False, id="install-window-no-hours"),
        pytest.param(
            {"dry_run": False, "respect_maintenance_window": False}, {}, None, 0, False, id="sop-opts-out-of-window"
        ),
        pytest.param({"dry_run": True}, {}, "Sunday 02:00-04:00 UTC", 0, True, id="settings-dry-run"),
        pytest.param({"dry_run": False}, {"dry_run": True}, "Sunday 02:00-04:00 UTC", 0, True, id="run-dry-run"),
        pytest.param(
            {"dry_run": False}, {"business_hours": True}, "Sunday 02:00-04:00 UTC", 1, False, id="office-hours-sop"
        ),
    ],
)
def test_sop_gate_policy_reads_a_sops_settings(settings, kwargs, window, hours, dry_run) -> None:
    toilless_config = {"maintenance_window": SUNDAY_WINDOW, "business_hours": WEEKDAYS}
    policy = gate.sop_gate_policy(
        toilless_config, {**settings, "gate": {"cooldown_minutes": 15, "circuit_breaker": {"max_actions": 2}}}, **kwargs
    )
    assert (policy.maintenance_window.describe() if policy.maintenance_window else None) == window
    assert len(policy.business_hours) == hours
    assert policy.dry_run is dry_run
    assert policy.cooldown == timedelta(minutes=15)
    assert policy.breaker_max_actions == 2
