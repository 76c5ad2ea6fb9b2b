"""Adversarial tests of RDS storage growth: a failure or crash at each step, retries, the gate at the moment of acting,
and the real AddTagsToResource contract (the fake RDS answers 400 where moto would store the tag)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.safety.rds_storage_guard_fake_rds import FakeInstance, FakeRds, client_error
from toilless.common import aws_contracts, gate
from toilless.common.config import read_defaults
from toilless.hooks.rds import RdsHook
from toilless.sops.rds_storage_guard import expansion, forecasting, growth_plan, markers, storage_policy
from toilless.sops.rds_storage_guard.markers import HISTORY_TAG, MARKER_TAG

RUN_ID = "manual__2026-12-01T10:00:00.123456+00:00"
# A Monday 10:00 and a Sunday 03:00 UTC (inside the shared maintenance window, Sunday 02:00-04:00 UTC), relative to
# today so no test depends on the date it runs.
_TODAY = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0)
MONDAY = _TODAY + timedelta(days=(7 - _TODAY.weekday()) % 7)
SUNDAY_IN_WINDOW = MONDAY + timedelta(days=6, hours=-7)
SETTINGS = read_defaults("rds_storage_guard")
TOILLESS = read_defaults("toilless")


def automatic_gate(dry_run: bool = False) -> gate.GatePolicy:
    return storage_policy.growth_gate_policy(SETTINGS, TOILLESS, dry_run=dry_run, automatic=True)


def approved_gate() -> gate.GatePolicy:
    return storage_policy.growth_gate_policy(SETTINGS, TOILLESS, dry_run=False, automatic=False)


def hook_with(fake: FakeRds) -> RdsHook:
    hook = RdsHook(aws_conn_id=None, region_name="eu-central-1")
    hook.__dict__["rds"] = fake  # the cached client
    return hook


def grow(hook: RdsHook, *, now: datetime = MONDAY, policy: gate.GatePolicy | None = None, **kwargs) -> dict:
    arguments = {"from_gib": 100, "target_gib": 130, "new_max_allocated_gib": None, "run_id": RUN_ID}
    arguments.update(kwargs)
    hook.rds.now = now
    return expansion.grow_storage_once(hook, "orders-db", now=now, gate_policy=policy or automatic_gate(), **arguments)


def next_decision(fake: FakeRds, hook: RdsHook, now: datetime) -> growth_plan.Decision:
    """What the next run decides at 95% used, from what the instance now says (storage optimization finished)."""
    fake.instances["orders-db"].status = "available"
    description = fake.instances["orders-db"].describe()
    last_change = expansion.last_storage_change(hook, description, now=now, lookback=timedelta(hours=7))
    allocated = description["AllocatedStorage"]
    history = [(now.timestamp() - hours * 3600, allocated * forecasting.GIB * 0.05) for hours in range(24, -1, -1)]
    instance = forecasting.instance_from_description(description, history, last_change)
    return growth_plan.decide(instance, storage_policy.StoragePolicy(auto_grow=True), now=now)


def test_failed_modify_leaves_no_cooldown_marker() -> None:
    """Issue 10 #1: StorageQuotaExceeded must not leave a marker that blocks the next run for six hours."""
    fake = FakeRds(FakeInstance("orders-db"))
    fake.fail["modify_db_instance"] = [client_error("StorageQuotaExceeded", "quota", "ModifyDBInstance")]
    hook = hook_with(fake)

    with pytest.raises(Exception, match="StorageQuotaExceeded"):
        grow(hook)

    assert MARKER_TAG not in fake.instances["orders-db"].tags
    assert fake.count("add_tags_to_resource") == 0
    decision = next_decision(fake, hook, MONDAY + timedelta(minutes=30))
    assert decision.action == growth_plan.GROW_NOW, decision.reason


def test_marker_tag_satisfies_the_real_add_tags_contract() -> None:
    """Issue 10 #2: the marker value held '->', which real RDS refuses (moto stores it)."""
    fake = FakeRds(FakeInstance("orders-db"))
    result = grow(hook_with(fake), run_id="manual__<weird>&{run};id")

    assert result["modified"] is True
    assert result["marker"]["written"] is True
    tags = fake.instances["orders-db"].tags
    aws_contracts.check_rds_tags([{"Key": key, "Value": value} for key, value in tags.items()])
    assert markers.parse_marker(tags[MARKER_TAG]) == MONDAY
    assert gate.decode_history(tags[HISTORY_TAG]) == (MONDAY,)


def test_successful_growth_blocks_the_next_run_by_cooldown() -> None:
    fake = FakeRds(FakeInstance("orders-db"))
    hook = hook_with(fake)
    grow(hook)
    decision = next_decision(fake, hook, MONDAY + timedelta(hours=1))
    assert decision.action == growth_plan.BLOCKED
    assert decision.blocked_reason == growth_plan.COOLDOWN


@pytest.mark.parametrize("lands", [pytest.param(True, id="applied-at-once"), pytest.param(False, id="left-pending")])
def test_retry_after_successful_modify_never_grows_twice(lands: bool) -> None:
    """Crash between modify_db_instance and its answer: the retry finds the change and records the marker."""
    fake = FakeRds(FakeInstance("orders-db"), apply_immediately_lands=lands)
    fake.crash_after["modify_db_instance"] = 1
    hook = hook_with(fake)

    with pytest.raises(ConnectionError):
        grow(hook)
    assert MARKER_TAG not in fake.instances["orders-db"].tags  # the crash came before the marker

    retried = grow(hook, now=MONDAY + timedelta(minutes=1))
    assert retried["outcome"] == "already_done"
    assert fake.count("modify_db_instance") == 1
    # The retry records this run's change, so cool-down and circuit breaker count it.
    assert markers.marker_run(fake.instances["orders-db"].tags[MARKER_TAG]) == aws_contracts.tag_safe(RUN_ID)

    again = grow(hook, now=MONDAY + timedelta(minutes=2))
    assert again["outcome"] == "already_done"
    assert fake.count("modify_db_instance") == 1
    assert fake.count("add_tags_to_resource") == 1


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(client_error("Throttling", "slow down", "ModifyDBInstance"), id="throttled"),
        pytest.param(client_error("StorageQuotaExceeded", "quota", "ModifyDBInstance"), id="quota"),
        pytest.param(ConnectionError("reset before the request arrived"), id="connection-reset"),
    ],
)
def test_retry_after_failed_modify_may_try_again(error: BaseException) -> None:
    fake = FakeRds(FakeInstance("orders-db"))
    fake.fail["modify_db_instance"] = [error]
    hook = hook_with(fake)

    with pytest.raises(type(error)):
        grow(hook)
    retried = grow(hook, now=MONDAY + timedelta(minutes=1))

    assert retried["outcome"] == "modified"
    assert fake.instances["orders-db"].allocated_gib == 130
    assert fake.count("modify_db_instance") == 2


def test_crash_while_reading_before_acting_changes_nothing() -> None:
    fake = FakeRds(FakeInstance("orders-db"))
    fake.fail["describe_db_instances"] = [ConnectionError("lost")]
    hook = hook_with(fake)
    with pytest.raises(ConnectionError):
        grow(hook)
    assert fake.count("modify_db_instance") == 0
    assert grow(hook)["outcome"] == "modified"
    assert fake.count("modify_db_instance") == 1


def test_marker_write_failure_after_accepted_modify_is_reported_not_retried() -> None:
    """The change was requested: failing the task now would only invite a retry; RDS's event still dates it."""
    fake = FakeRds(FakeInstance("orders-db"))
    fake.fail["add_tags_to_resource"] = [client_error("Throttling", "slow down", "AddTagsToResource")]
    hook = hook_with(fake)

    result = grow(hook)

    assert result["outcome"] == "modified"
    assert result["marker"]["written"] is False
    decision = next_decision(fake, hook, MONDAY + timedelta(hours=1))
    assert decision.blocked_reason == growth_plan.COOLDOWN  # from the RDS event


def test_retry_after_the_maintenance_window_opened_does_not_grow() -> None:
    """Issue 10 #4: decided outside the window, the first try failed, the retry runs inside it: no growth."""
    fake = FakeRds(FakeInstance("orders-db"))
    fake.fail["modify_db_instance"] = [client_error("Throttling", "slow down", "ModifyDBInstance")]
    hook = hook_with(fake)
    before_window = SUNDAY_IN_WINDOW - timedelta(hours=1, minutes=30)
    with pytest.raises(Exception, match="Throttling"):
        grow(hook, now=before_window)

    retried = grow(hook, now=SUNDAY_IN_WINDOW)

    assert retried["outcome"] == "gate_refused"
    assert retried["gate"]["check"] == gate.TIME_POLICY
    assert "maintenance window" in retried["gate"]["reason"]
    assert retried["gate"]["allowed_from"] == (SUNDAY_IN_WINDOW + timedelta(hours=1)).isoformat()
    assert fake.instances["orders-db"].allocated_gib == 100
    assert fake.count("modify_db_instance") == 1


def test_approved_growth_is_not_held_by_the_maintenance_window() -> None:
    """Inside the window automatic growth becomes an approval request; the approved growth then proceeds."""
    fake = FakeRds(FakeInstance("orders-db"))
    assert grow(hook_with(fake), now=SUNDAY_IN_WINDOW, policy=approved_gate())["outcome"] == "modified"


def test_dry_run_at_the_moment_of_acting_changes_nothing() -> None:
    fake = FakeRds(FakeInstance("orders-db"))
    result = grow(hook_with(fake), policy=automatic_gate(dry_run=True))
    assert result["outcome"] == "dry_run"
    assert fake.count("modify_db_instance") == 0
    assert fake.count("add_tags_to_resource") == 0


def test_cooldown_checked_at_the_moment_of_acting() -> None:
    """Another run's change landed between this run's decision and its action (same size, e.g. MaxAllocatedStorage)."""
    marker = markers.marker_value(MONDAY - timedelta(hours=1), "other-run", 90, 100)
    fake = FakeRds(FakeInstance("orders-db", tags={MARKER_TAG: marker}))
    for policy in (automatic_gate(), approved_gate()):
        result = grow(hook_with(fake), policy=policy)
        assert result["outcome"] == "gate_refused"
        assert result["gate"]["check"] == gate.COOLDOWN
        assert result["gate"]["allowed_from"] == (MONDAY + timedelta(hours=5)).isoformat()
    assert fake.count("modify_db_instance") == 0


def test_circuit_breaker_stops_a_third_automatic_growth_in_a_day() -> None:
    recent = gate.encode_history(
        [MONDAY - timedelta(hours=18), MONDAY - timedelta(hours=7)], now=MONDAY, keep=timedelta(days=7)
    )
    fake = FakeRds(FakeInstance("orders-db", tags={HISTORY_TAG: recent}))
    result = grow(hook_with(fake))
    assert result["outcome"] == "gate_refused"
    assert result["gate"]["check"] == gate.CIRCUIT_BREAKER
    assert result["gate"]["allowed_from"] == (MONDAY + timedelta(hours=6)).isoformat()
    assert fake.count("modify_db_instance") == 0
    # A person's approval is not an automatic action: it proceeds, and counts towards the breaker.
    assert grow(hook_with(fake), policy=approved_gate())["outcome"] == "modified"
    assert len(gate.decode_history(fake.instances["orders-db"].tags[HISTORY_TAG])) == 3


@pytest.mark.parametrize(
    ("instance_id", "target"),
    [
        pytest.param("orders--db", 130, id="identifier-double-hyphen"),
        pytest.param("orders-db", 70_000, id="above-gp3-maximum"),
    ],
)
def test_request_breaking_the_api_contract_is_never_sent(instance_id: str, target: int) -> None:
    fake = FakeRds(FakeInstance("orders-db"), FakeInstance("orders--db"))
    hook = hook_with(fake)
    with pytest.raises(aws_contracts.AwsContractError):
        expansion.grow_storage_once(
            hook,
            instance_id,
            from_gib=100,
            target_gib=target,
            new_max_allocated_gib=None,
            run_id=RUN_ID,
            gate_policy=automatic_gate(),
            now=MONDAY,
        )
    assert fake.count("modify_db_instance") == 0
