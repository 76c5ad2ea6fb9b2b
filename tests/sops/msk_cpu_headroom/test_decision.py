"""The pure judgement of msk_cpu_headroom: headroom state and shape, the topics behind a spike, the broker type to
recommend and what it costs, the two-person rule."""

from __future__ import annotations

from typing import Any

import pytest

from toilless.common.config import ConfigError, read_defaults
from toilless.sops.msk_cpu_headroom import decide, headroom, sizing, topics
from toilless.sops.msk_cpu_headroom.approvals import two_person_rule

NOW = 1_000_000_000.0
RULES = headroom.HeadroomRules()
TYPES = sizing.broker_types(read_defaults("msk_cpu_headroom")["broker_types"])


def series(profile: Any, *, hours: int = 7 * 24) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(last hour per minute, 7 days per hour) of ``profile(hours_ago)``, relative to NOW."""
    hour = [(NOW - m * 60, profile(m / 60)) for m in range(1, 60)]
    week = [(NOW - h * 3600, profile(float(h))) for h in range(1, hours + 1)]
    return hour, week


@pytest.mark.parametrize(
    ("profile", "hours", "state", "shape"),
    [
        pytest.param(lambda h: 30.0, 168, headroom.OK, headroom.SUSTAINED, id="healthy"),
        pytest.param(lambda h: 85.0 if h < 1 else 35.0, 168, headroom.URGENT, headroom.SPIKE, id="spike-urgent"),
        pytest.param(lambda h: 65.0 if h < 1 else 35.0, 168, headroom.WARNING, headroom.SPIKE, id="spike-warning"),
        pytest.param(lambda h: 75.0 - 35.0 * h / 168, 168, headroom.WARNING, headroom.STEADY_RISE, id="steady-rise"),
        pytest.param(lambda h: 70.0, 168, headroom.WARNING, headroom.SUSTAINED, id="sustained-high"),
        pytest.param(lambda h: 85.0 if h < 1 else 35.0, 10, headroom.URGENT, headroom.UNKNOWN, id="too-little-history"),
        pytest.param(lambda h: 60.0, 168, headroom.OK, headroom.SUSTAINED, id="exactly-40-headroom-is-ok"),
        pytest.param(lambda h: 80.0, 168, headroom.WARNING, headroom.SUSTAINED, id="exactly-80-is-not-urgent"),
    ],
)
def test_broker_state_and_shape(profile: Any, hours: int, state: str, shape: str) -> None:
    hour, week = series(profile, hours=hours)
    broker = headroom.broker_headroom("1", hour, week, now=NOW, rules=RULES)
    assert (broker.state, broker.shape) == (state, shape)


def test_steady_rise_reports_its_slope_and_median() -> None:
    hour, week = series(lambda h: 75.0 - 35.0 * h / 168)
    broker = headroom.broker_headroom("2", hour, week, now=NOW, rules=RULES)
    assert broker.slope_pct_per_day == pytest.approx(5.0, abs=0.01)
    assert broker.hour_used_pct == pytest.approx(75.0, abs=0.2)
    assert broker.headroom_pct == pytest.approx(25.0, abs=0.2)


def test_no_data_in_the_last_hour() -> None:
    broker = headroom.broker_headroom("1", [], series(lambda h: 30.0)[1], now=NOW, rules=RULES)
    assert broker.state == headroom.NO_DATA


def test_a_spike_on_one_broker_makes_the_cluster_a_spike() -> None:
    spiking = headroom.broker_headroom("1", *series(lambda h: 85.0 if h < 1 else 35.0), now=NOW, rules=RULES)
    rising = headroom.broker_headroom("2", *series(lambda h: 75.0 - 35.0 * h / 168), now=NOW, rules=RULES)
    calm = headroom.broker_headroom("3", *series(lambda h: 30.0), now=NOW, rules=RULES)
    assert headroom.cluster_shape([calm, rising]) == headroom.STEADY_RISE
    assert headroom.cluster_shape([calm, rising, spiking]) == headroom.SPIKE
    assert headroom.worst_state(b.state for b in (calm, rising, spiking)) == headroom.URGENT


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({"warning_headroom_pct": 140}, id="over-100"),
        pytest.param({"spike_min_rise_pct": 0}, id="zero-spike"),
        pytest.param({"min_history_points": 1.5}, id="fractional-points"),
        pytest.param({"urgent_used_pct": "80"}, id="string"),
    ],
)
def test_bad_rules_are_refused(bad: dict[str, Any]) -> None:
    config = {**read_defaults("msk_cpu_headroom")["rules"], **bad}
    with pytest.raises(ConfigError):
        headroom.HeadroomRules.from_config(config)


# -- topics ------------------------------------------------------------------------------------------------------


def topic_series(rates: dict[str, tuple[float, float]]) -> tuple[dict[str, Any], dict[str, Any]]:
    hour = {t: [(NOW - m * 60, last) for m in range(1, 60)] for t, (_, last) in rates.items()}
    week = {t: [(NOW - h * 3600, before) for h in range(2, 169)] for t, (before, _) in rates.items()}
    return hour, week


RULES_T = topics.TopicRules()


@pytest.mark.parametrize(
    ("rates", "owners", "route", "drivers", "unknown"),
    [
        pytest.param(
            {"connect-component-perf": (1e6, 2e7), "orders": (2e6, 2.5e6)},
            {},
            topics.CONNECT_COMPONENT,
            ["connect-component-perf"],
            [],
            id="connect-component-load-test",
        ),
        pytest.param(
            {"payments.events": (1e6, 1.5e7), "orders.created": (1e6, 6e6), "connect-component-x": (1e6, 1.5e6)},
            {"orders.*": "team-orders"},
            topics.ASK_OWNERS,
            ["payments.events", "orders.created"],
            ["payments.events"],
            id="other-topics-one-unknown-owner",
        ),
        pytest.param({"a": (1e6, 1e6)}, {}, topics.NO_RISE, [], [], id="nothing-rose"),
        pytest.param({}, {}, topics.NO_TOPIC_METRICS, [], [], id="no-per-topic-metrics"),
    ],
)
def test_spike_attribution(
    rates: dict[str, tuple[float, float]], owners: dict[str, str], route: str, drivers: list[str], unknown: list[str]
) -> None:
    rises = topics.topic_rises(*topic_series(rates), now=NOW)
    result = topics.attribute_spike(rises, owners=owners, rules=RULES_T)
    assert result["route"] == route
    assert [row["topic"] for row in result["drivers"]] == drivers
    assert result["unknown_owner"] == unknown


def test_owner_lookup_prefers_the_exact_name_then_the_longest_pattern() -> None:
    owners = {"orders.*": "team-orders", "orders.refunds.*": "team-refunds", "orders.created": "alice"}
    assert topics.owner_of("orders.created", owners) == "alice"
    assert topics.owner_of("orders.refunds.eu", owners) == "team-refunds"
    assert topics.owner_of("orders.paid", owners) == "team-orders"
    assert topics.owner_of("payments", owners) is None


# -- sizing --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "busiest", "target", "delta"),
    [
        pytest.param("kafka.m5.large", 75.0, "kafka.m5.xlarge", 459.90, id="one-size-up"),
        pytest.param("kafka.m5.large", 150.0, "kafka.m5.2xlarge", 1379.70, id="two-sizes-up"),
        pytest.param("kafka.m7g.xlarge", 70.0, "kafka.m7g.2xlarge", 893.52, id="same-family-only"),
    ],
)
def test_recommendation_and_monthly_cost_difference(current: str, busiest: float, target: str, delta: float) -> None:
    result = sizing.recommend(current, brokers=3, busiest_used_pct=busiest, target_used_pct=60, types=TYPES)
    assert result["target_type"] == target
    # (target - current USD per broker-hour) x 3 brokers x 730 h
    assert result["delta_usd_month"] == pytest.approx(delta)
    assert result["projected_used_pct"] <= 60


@pytest.mark.parametrize(
    ("current", "reason"),
    [
        pytest.param("kafka.m5.8xlarge", "largest", id="largest-type"),
        pytest.param("kafka.m6i.large", "not in the broker-type table", id="unknown-type"),
    ],
)
def test_no_recommendation(current: str, reason: str) -> None:
    result = sizing.recommend(current, brokers=3, busiest_used_pct=90, target_used_pct=60, types=TYPES)
    assert result["target_type"] is None
    assert reason in result["reason"]


def test_broker_type_table_refuses_duplicates_and_bad_prices() -> None:
    with pytest.raises(ConfigError):
        sizing.broker_types([{"type": "kafka.m5.large", "vcpu": 2, "usd_per_hour": 0.2}] * 2)
    with pytest.raises(ConfigError):
        sizing.broker_types([{"type": "kafka.m5.large", "vcpu": 2, "usd_per_hour": -1}])


# -- the whole decision --------------------------------------------------------------------------------------------


def measured(profile: Any, rises: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    hour, week = series(profile)
    return {
        "cluster_arn": "arn",
        "cluster_name": "demo",
        "instance_type": "kafka.m5.large",
        "broker_ids": ["1", "2", "3"],
        "cpu_hour": {b: hour for b in ("1", "2", "3")},
        "cpu_week": {b: week for b in ("1", "2", "3")},
        "topic_rises": rises or [],
    }


def run_decide(data: dict[str, Any]) -> dict[str, Any]:
    return decide.decide(data, rules=RULES, topic_rules=RULES_T, owners={}, types=TYPES, target_used_pct=60, now=NOW)


@pytest.mark.parametrize(
    ("profile", "action"),
    [
        pytest.param(lambda h: 30.0, decide.NONE, id="healthy"),
        pytest.param(lambda h: 75.0 - 35.0 * h / 168, decide.RECOMMEND_RESIZE, id="steady-rise"),
        pytest.param(lambda h: 70.0, decide.RECOMMEND_RESIZE, id="sustained"),
        pytest.param(lambda h: 85.0 if h < 1 else 35.0, decide.ASK_OWNERS, id="spike-without-topic-metrics"),
    ],
)
def test_cluster_action(profile: Any, action: str) -> None:
    assert run_decide(measured(profile))["action"] == action


def test_spike_on_connect_component_topics_asks_that_team() -> None:
    rises = topics.topic_rises(*topic_series({"connect-component-perf": (1e6, 2e7)}), now=NOW)
    decision = run_decide(measured(lambda h: 85.0 if h < 1 else 35.0, rises))
    assert decision["action"] == decide.ASK_CONNECT_COMPONENT
    assert decision["recommendation"] is None


# -- two approvals, two people -------------------------------------------------------------------------------------


def answer(user: Any, option: str = "Approve") -> dict[str, Any]:
    return {"chosen_options": [option], "responded_by_user": user}


@pytest.mark.parametrize(
    ("first", "second", "approved", "why"),
    [
        pytest.param(answer({"id": "alice"}), answer({"id": "bob"}), True, "alice and bob", id="two-people"),
        pytest.param(answer({"id": "alice"}), answer({"id": "alice"}), False, "same person", id="same-person"),
        pytest.param(answer({"id": "Alice"}), answer({"id": "alice "}), False, "same person", id="same-person-case"),
        pytest.param(answer("alice"), answer("alice"), False, "same person", id="same-person-plain-name"),
        pytest.param(answer({"id": "alice"}), answer({"id": "bob"}, "Reject"), False, "second", id="second-rejects"),
        pytest.param(answer({"id": "alice"}), None, False, "second", id="no-second"),
        pytest.param(answer({"id": "alice"}), answer(None), False, "no approver", id="timeout-default"),
    ],
)
def test_two_person_rule(first: Any, second: Any, approved: bool, why: str) -> None:
    verdict = two_person_rule(first, second)
    assert verdict["approved"] is approved
    assert why in verdict["reason"]
