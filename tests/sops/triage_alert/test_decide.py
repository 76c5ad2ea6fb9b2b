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
