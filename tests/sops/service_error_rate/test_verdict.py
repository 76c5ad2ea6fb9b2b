"""The judgement: spread first (noise / degraded / failing), then restart, scale or report."""

from __future__ import annotations

from typing import Any

import pytest

from toilless.sops.service_error_rate import verdict
from toilless.sops.service_error_rate.verdict import Thresholds

T = Thresholds()


def _metrics(
    n: int, *, requests: float = 1000, errors: float = 0, p95: float = 0.1, saturation: float | None = None
) -> dict[str, dict[str, Any]]:
    return {
        f"web-1-p{i}": {
            "requests": requests,
            "errors": errors,
            "error_ratio": errors / requests if requests else None,
            "latency_p95_seconds": p95,
            "saturation": saturation,
        }
        for i in range(n)
    }


@pytest.mark.parametrize(
    ("metrics", "severity"),
    [
        pytest.param(_metrics(3, errors=1), verdict.NOISE, id="one-error-at-night"),
        pytest.param(_metrics(3, requests=10, errors=5), verdict.NOISE, id="too-little-traffic"),
        pytest.param(_metrics(3, errors=20), verdict.NOISE, id="many-errors-low-ratio"),
        pytest.param(_metrics(3, errors=60), verdict.DEGRADED, id="six-percent"),
        pytest.param(_metrics(3, errors=150), verdict.FAILING, id="fifteen-percent"),
        pytest.param(_metrics(3, p95=0.7), verdict.DEGRADED, id="slow"),
        pytest.param(_metrics(3, p95=1.5), verdict.FAILING, id="very-slow"),
        pytest.param(_metrics(3, requests=5, p95=0.7), verdict.DEGRADED, id="slow-with-little-traffic"),
        pytest.param({}, verdict.NOISE, id="no-series"),
    ],
)
def test_spread(metrics: dict[str, Any], severity: str) -> None:
    assert verdict.measure_spread(metrics, T).severity == severity


def test_spread_names_the_affected_pods() -> None:
    metrics = {
        **_metrics(2),
        "web-1-bad": {"requests": 100, "errors": 50, "error_ratio": 0.5, "latency_p95_seconds": 0.1},
    }
    spread = verdict.measure_spread(metrics, T)
    assert spread.affected_pods == ("web-1-bad",)
    assert spread.errors == 50


HEALTHY = [{"name": "web-1-p0", "unhealthy": False}, {"name": "web-1-p1", "unhealthy": False}]
CRASHING = [
    {"name": "web-1-p0", "unhealthy": True, "reasons": ["CrashLoopBackOff"], "restarts": 7, "ready": False},
    {"name": "web-1-p1", "unhealthy": False},
]


def _decide(metrics: dict[str, Any], pods: list[dict[str, Any]], **kwargs: Any) -> verdict.Decision:
    arguments: dict[str, Any] = {
        "target": "shop/web",
        "pods": pods,
        "owned_pods": [pod["name"] for pod in pods],
        "dependencies": [{"name": "db", "ok": True}],
        "replicas": 2,
        "max_replicas": 4,
        "scale_step": 1,
        "allow_restart": True,
        "allow_scale": True,
    }
    arguments.update(kwargs)
    return verdict.decide(verdict.measure_spread(metrics, T), **arguments)


@pytest.mark.parametrize(
    ("metrics", "pods", "kwargs", "action", "fragment"),
    [
        pytest.param(_metrics(2, errors=1), HEALTHY, {}, verdict.NONE, "acknowledged and left", id="noise"),
        pytest.param(
            _metrics(2, errors=150), CRASHING, {}, verdict.RESTART, "CrashLoopBackOff, 7 restarts", id="crash-restart"
        ),
        pytest.param(
            _metrics(2, errors=1), CRASHING, {}, verdict.RESTART, "restart shop/web", id="unhealthy-even-if-quiet"
        ),
        pytest.param(
            _metrics(2, errors=150), CRASHING, {"owned_pods": []}, verdict.REPORT, "not owned", id="not-our-pods"
        ),
        pytest.param(
            _metrics(2, errors=150),
            CRASHING,
            {"allow_restart": False},
            verdict.REPORT,
            "switched off",
            id="restart-off",
        ),
        pytest.param(
            _metrics(2, errors=150),
            CRASHING,
            {"dependencies": [{"name": "orders db", "ok": False}]},
            verdict.REPORT,
            "dependency orders db failed",
            id="dependency-down",
        ),
        pytest.param(
            _metrics(2, p95=0.7, saturation=0.95), HEALTHY, {}, verdict.SCALE, "from 2 to 3", id="saturated-scale"
        ),
        pytest.param(
            _metrics(2, p95=0.7, saturation=0.95),
            HEALTHY,
            {"replicas": 4},
            verdict.REPORT,
            "already at max_replicas",
            id="saturated-at-cap",
        ),
        pytest.param(
            _metrics(2, p95=0.7, saturation=0.95),
            HEALTHY,
            {"allow_scale": False},
            verdict.REPORT,
            "switched off",
            id="scale-off",
        ),
        pytest.param(_metrics(2, errors=150), HEALTHY, {}, verdict.REPORT, "owning team must look", id="code-problem"),
    ],
)
def test_decide(
    metrics: dict[str, Any], pods: list[dict[str, Any]], kwargs: dict[str, Any], action: str, fragment: str
) -> None:
    decision = _decide(metrics, pods, **kwargs)
    assert decision.action == action
    assert fragment in decision.reason


def test_scale_never_exceeds_max_replicas() -> None:
    decision = _decide(_metrics(2, p95=0.7, saturation=0.95), HEALTHY, replicas=3, max_replicas=4, scale_step=5)
    assert decision.to_replicas == 4


def test_failing_escalates_and_degraded_does_not() -> None:
    assert _decide(_metrics(2, errors=150), HEALTHY).escalate is True
    assert _decide(_metrics(2, errors=60), HEALTHY).escalate is False


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        pytest.param(_metrics(2, errors=1), True, id="clean"),
        pytest.param(_metrics(2, errors=100), False, id="still-erroring"),
        pytest.param(_metrics(2, p95=0.9), False, id="still-slow"),
        pytest.param(_metrics(2, requests=0), None, id="no-traffic"),
    ],
)
def test_recovered(metrics: dict[str, Any], expected: bool | None) -> None:
    assert verdict.recovered(verdict.measure_spread(metrics, T), T) is expected
