"""Per-pod metrics from query answers, and pod health from Pod JSON."""

from __future__ import annotations

import math
from typing import Any

import pytest

from toilless.sops.service_error_rate import evidence


def test_per_pod_metrics_merges_queries_and_fills_missing_errors() -> None:
    metrics = evidence.per_pod_metrics(
        {
            "requests": {"a": 100.0, "b": 50.0},
            "errors": {"a": 10.0},
            "latency_p95_seconds": {"a": 0.2, "b": math.nan},
        }
    )
    assert list(metrics) == ["a", "b"]  # most 5xx first
    assert metrics["a"]["error_ratio"] == pytest.approx(0.1)
    assert metrics["b"]["errors"] == 0.0
    assert metrics["b"]["latency_p95_seconds"] is None  # NaN: unknown, not a number to compare


def _pod(
    name: str,
    *,
    ready: bool = True,
    phase: str = "Running",
    restarts: int = 0,
    waiting: str = "",
    terminated: str = "",
    owner: str = "web-abc",
) -> dict[str, Any]:
    state: dict[str, Any] = {"running": {}} if not waiting else {"waiting": {"reason": waiting}}
    last: dict[str, Any] = {"terminated": {"reason": terminated}} if terminated else {}
    return {
        "metadata": {
            "name": name,
            "ownerReferences": [{"kind": "ReplicaSet", "name": owner, "controller": True}],
        },
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"ready": ready, "restartCount": restarts, "state": state, "lastState": last}],
        },
    }


@pytest.mark.parametrize(
    ("pod", "unhealthy", "reasons"),
    [
        pytest.param(_pod("p"), False, [], id="healthy"),
        pytest.param(
            _pod("p", ready=False, waiting="CrashLoopBackOff", restarts=5), True, ["CrashLoopBackOff"], id="crash"
        ),
        pytest.param(_pod("p", terminated="OOMKilled", restarts=1), True, ["OOMKilled"], id="oom"),
        pytest.param(_pod("p", restarts=3), True, [], id="many-restarts"),
        pytest.param(_pod("p", ready=False), True, [], id="not-ready"),
        pytest.param(
            _pod("p", phase="Pending", ready=False, waiting="ImagePullBackOff"), True, ["ImagePullBackOff"], id="pull"
        ),
    ],
)
def test_assess_pod(pod: dict[str, Any], unhealthy: bool, reasons: list[str]) -> None:
    from toilless.common.kubernetes_contracts import pod_health

    assessed = evidence.assess_pod(pod_health(pod), owner=evidence.controller_of(pod), unhealthy_restarts=3)
    assert assessed["unhealthy"] is unhealthy
    assert assessed["reasons"] == reasons
    assert assessed["owner"] == "ReplicaSet/web-abc"


def test_owner_must_be_one_of_the_deployments_replica_sets() -> None:
    owned = {"web-abc"}
    assert evidence.owned_by_deployment({"owner": "ReplicaSet/web-abc"}, owned)
    assert not evidence.owned_by_deployment({"owner": "ReplicaSet/other-1"}, owned)
    assert not evidence.owned_by_deployment({"owner": "StatefulSet/web-abc"}, owned)
    assert not evidence.owned_by_deployment({"owner": ""}, owned)
    assert evidence.controller_of({"metadata": {}}) == ""
