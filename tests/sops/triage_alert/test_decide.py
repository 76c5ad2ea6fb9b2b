"""Triage alert: the verdict (pure) from the evidence, and the pods' health."""

from __future__ import annotations

from typing import Any

import pytest

from toilless.sops.triage_alert.decide import KNOWN_CAUSE, NOISE, REAL, decide, pods_health, total


def cause(**changes: Any) -> dict[str, Any]:
    found = {
        "name": "vault-token-expired",
        "response": "refresh the token",
        "owner_channel": "infrastructure",
        "min_matches": 1,
        "require_pods_healthy": True,
        "matches": 0,
        "pods_healthy": None,
        "pod_problems": [],
        "log_source": "pod p/x",
    }
    found.update(changes)
    return found


@pytest.mark.parametrize(
    ("count", "causes", "verdict", "reason"),
    [
        pytest.param(0.0, [], NOISE, "at most 1: noise", id="nothing"),
        pytest.param(1.0, [], NOISE, "at most 1: noise", id="one-error"),
        pytest.param(2.0, [], REAL, "more than 1: real", id="two-errors"),
        pytest.param(500.0, [cause()], REAL, "more than 1: real", id="burst-no-known-cause"),
        pytest.param(
            500.0, [cause(matches=3, pods_healthy=True)], KNOWN_CAUSE, "known cause vault", id="vault-healthy"
        ),
        pytest.param(
            500.0,
            [cause(matches=3, pods_healthy=False, pod_problems=["p: not Ready"])],
            REAL,
            "not dismissed",
            id="vault-unhealthy",
        ),
        pytest.param(
            1.0, [cause(matches=3, pods_healthy=None)], REAL, "not dismissed", id="vault-pods-unknown-is-not-noise"
        ),
        pytest.param(
            500.0,
            [cause(matches=3, pods_healthy=False, require_pods_healthy=False)],
            KNOWN_CAUSE,
            "known cause",
            id="cause-not-needing-health",
        ),
        pytest.param(500.0, [cause(matches=1, min_matches=2)], REAL, "real", id="under-min-matches"),
        pytest.param(None, [], REAL, "could not be measured", id="prometheus-down-is-real"),
        pytest.param(None, [cause(matches=None, log_error="timeout")], REAL, "could not", id="nothing-readable"),
    ],
)
def test_verdict(count: float | None, causes: list[dict[str, Any]], verdict: str, reason: str) -> None:
    result = decide(count=count, count_error="connection refused", noise_at_most=1, causes=causes)
    assert result.verdict == verdict
    assert reason in result.reason
    assert result.evidence  # every verdict carries its evidence


def test_known_cause_carries_its_response_and_owner() -> None:
    result = decide(count=9, count_error="", noise_at_most=1, causes=[cause(matches=2, pods_healthy=True)])
    assert (result.response, result.owner_channel, result.cause) == (
        "refresh the token",
        "infrastructure",
        "vault-token-expired",
    )


def pod(name: str = "p", *, phase: str = "Running", ready: str = "True", restarts: int = 0, **meta: Any) -> dict:
    return {
        "metadata": {"name": name, **meta},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": ready}],
            "containerStatuses": [{"restartCount": restarts}],
        },
    }


@pytest.mark.parametrize(
    ("pods", "healthy", "problem"),
    [
        pytest.param([pod(), pod("q")], True, "", id="all-ready"),
        pytest.param([], False, "no pods found", id="no-pods"),
        pytest.param([pod(), pod("q", ready="False")], False, "q: not Ready", id="one-not-ready"),
        pytest.param([pod(phase="Pending")], False, "phase Pending", id="pending"),
        pytest.param([pod(restarts=4)], False, "4 restarts", id="crash-looping"),
        pytest.param([pod(deletionTimestamp="2026-01-01T00:00:00Z")], False, "being deleted", id="terminating"),
        pytest.param([{"metadata": {"name": "bare"}}], False, "bare: phase None", id="no-status"),
    ],
)
def test_pods_health(pods: list[dict[str, Any]], healthy: bool, problem: str) -> None:
    ok, problems = pods_health(pods, max_restarts=3)
    assert ok is healthy
    assert problem in "; ".join(problems)


def test_total_sums_series_and_refuses_nan() -> None:
    assert total([]) == 0
    assert total([1.0, 2.5]) == 3.5
    with pytest.raises(ValueError, match="not a count"):
        total([float("nan")])


def topic_cause(**changes: Any) -> dict[str, Any]:
    found = cause(
        name="kafka-topic-does-not-exist",
        response="a typo, dismissed",
        owner_response="many: check the producer's topic",
        require_pods_healthy=False,
        matches=2,
        count=2,
        per_key={"orders-v2": 2},
        at_least=5,
        window_minutes=60,
        owner_map="topic_owners",
    )
    found.update(changes)
    return found


OWNERS = {"topic_owners": {"orders-v2": "developers", "payments": "developers"}}


def test_a_topic_error_seen_under_the_threshold_is_dismissed_as_a_typo() -> None:
    verdict = decide(count=500.0, count_error="", noise_at_most=1, causes=[topic_cause()], owner_maps=OWNERS)
    assert verdict.verdict == KNOWN_CAUSE
    assert "seen 2 time(s) in 60 min, under 5: dismissed" in verdict.reason
    assert verdict.response == "a typo, dismissed"
    assert verdict.owner_notices == []


@pytest.mark.parametrize(
    ("per_key", "notices", "unknown"),
    [
        pytest.param(
            {"orders-v2": 5},
            [{"channel": "developers", "counts": {"orders-v2": 5}}],
            {},
            id="exactly-the-threshold-known-owner",
        ),
        pytest.param(
            {"orders-v2": 4, "mystery": 3},
            [
                {"channel": "developers", "counts": {"orders-v2": 4}},
                {"channel": "infrastructure", "counts": {"mystery": 3}, "unowned": True},
            ],
            {"mystery": 3},
            id="unknown-owner-named-and-sent-to-the-causes-owner",
        ),
    ],
)
def test_a_topic_error_at_or_over_the_threshold_goes_to_the_topics_owner_with_the_numbers(
    per_key: dict[str, int], notices: list[dict[str, Any]], unknown: dict[str, int]
) -> None:
    total = sum(per_key.values())
    verdict = decide(
        count=500.0,
        count_error="",
        noise_at_most=1,
        causes=[topic_cause(matches=total, count=total, per_key=per_key)],
        owner_maps=OWNERS,
    )
    assert verdict.verdict == KNOWN_CAUSE
    assert f"seen {total} times in 60 min, at least 5: the owners are told" in verdict.reason
    assert verdict.response == "many: check the producer's topic"
    assert verdict.owner_notices == notices
    assert verdict.unknown_owners == unknown
    assert verdict.counted == f"{total} in 60 min"
    assert f"seen {total} in 60 min (" in " ".join(verdict.evidence)


def test_a_known_cause_that_could_not_be_counted_is_real() -> None:
    verdict = decide(
        count=0.0,
        count_error="",
        noise_at_most=1,
        causes=[topic_cause(count=None, count_error="PrometheusUnavailable: down")],
    )
    assert verdict.verdict == REAL
    assert "could not be counted" in verdict.reason


def trend(state: str, **changes: Any) -> dict[str, Any]:
    found = {"state": state, "summary": f"{state} summary", "on_rising": "real", "on_flat": "noise"}
    found.update(changes)
    return found


@pytest.mark.parametrize(
    ("count", "found", "verdict", "reason"),
    [
        pytest.param(0.0, trend("rising"), REAL, "steadily rising summary: real", id="rising-is-real-even-if-quiet"),
        pytest.param(5.0, trend("flat"), NOISE, "not a steady rise (flat summary): noise", id="flat-is-noise"),
        pytest.param(5.0, trend("flat", on_flat="count"), REAL, "more than 1: real", id="flat-leaves-it-to-count"),
        pytest.param(0.0, trend("rising", on_rising="count"), NOISE, "at most 1", id="rising-leaves-it-to-count"),
        pytest.param(0.0, trend("unknown"), REAL, "trend could not be read", id="unknown-trend-is-real"),
    ],
)
def test_the_trend_decides_when_the_rule_says_so(
    count: float, found: dict[str, Any], verdict: str, reason: str
) -> None:
    decided = decide(count=count, count_error="", noise_at_most=1, causes=[], trend=found)
    assert decided.verdict == verdict
    assert reason in decided.reason
    assert f"trend: {found['summary']}" in decided.evidence


def test_an_unreadable_count_is_real_whatever_the_trend_says() -> None:
    decided = decide(count=None, count_error="down", noise_at_most=1, causes=[], trend=trend("flat"))
    assert decided.verdict == REAL


def test_topic_errors_only_older_than_the_window_do_not_dismiss_the_alert() -> None:
    verdict = decide(count=500.0, count_error="", noise_at_most=1, causes=[topic_cause(matches=4, count=0, per_key={})])
    assert verdict.verdict == REAL
    assert "more than 1: real" in verdict.reason
    assert any("seen 0 in 60 min" in line for line in verdict.evidence)
