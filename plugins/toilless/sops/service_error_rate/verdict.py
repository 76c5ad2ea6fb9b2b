"""The judgement: how widespread the errors are (noise / degraded / failing) and what to do about it. Pure.

The on-call rule it encodes: one error at night is acknowledged and left; many are investigated. So the spread is
measured first (5xx count and ratio, p95 latency, per pod, over the window), and only then is an action chosen:

1. **noise** (fewer 5xx than ``min_errors``, or a ratio and latency under the degraded thresholds, all pods
   healthy): acknowledged, nothing done.
2. a **dependency** (database, Redis) fails its TCP or auth ping: report to the owning team; restarting or scaling
   the service would not help.
3. **unhealthy pods** (not ready, CrashLoopBackOff, OOMKilled, image pull errors, many restarts) owned by the
   Deployment: **restart** that Deployment (rollout restart), and only it.
4. **saturated** pods (at least half of those with a saturation figure at or above the threshold): **scale** up by
   ``step`` within ``max_replicas``; at the cap, report.
5. otherwise (errors from pods that look healthy and are not saturated: the code or its input): **report** to the
   owning team with the evidence.

Switches (``allow_restart``/``allow_scale`` off) turn an action into a report that says what would have been done.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

NOISE = "noise"
DEGRADED = "degraded"
FAILING = "failing"

NONE = "none"
REPORT = "report"
RESTART = "restart"
SCALE = "scale"


@dataclass(frozen=True)
class Thresholds:
    min_errors: float = 10
    min_requests: float = 100
    error_ratio_degraded: float = 0.05
    error_ratio_failing: float = 0.10
    latency_p95_seconds_degraded: float = 0.5
    latency_p95_seconds_failing: float = 1.0
    saturation_threshold: float = 0.8

    @classmethod
    def from_settings(cls, thresholds: Mapping[str, Any]) -> Thresholds:
        return cls(**{name: float(thresholds[name]) for name in cls.__dataclass_fields__ if name in thresholds})


@dataclass(frozen=True)
class Spread:
    """The window's numbers over the Deployment's pods."""

    requests: float
    errors: float
    error_ratio: float | None
    pods_with_traffic: int
    #: Pods whose own ratio or p95 is at or above the degraded thresholds.
    affected_pods: tuple[str, ...]
    median_p95_seconds: float | None
    worst_p95_seconds: float | None
    saturated_pods: tuple[str, ...]
    pods_with_saturation: int
    severity: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    severity: str
    action: str
    target: str
    reason: str
    from_replicas: int | None = None
    to_replicas: int | None = None
    unhealthy_pods: tuple[str, ...] = ()
    failed_dependencies: tuple[str, ...] = ()
    notify_owner: bool = False
    escalate: bool = False
    notes: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ratio(errors: float, requests: float) -> float | None:
    return errors / requests if requests > 0 else None


def measure_spread(metrics: Mapping[str, Mapping[str, float | None]], thresholds: Thresholds) -> Spread:
    """How widespread it is, from per-pod ``requests``, ``errors``, ``latency_p95_seconds``, ``saturation``."""
    requests = sum(m.get("requests") or 0.0 for m in metrics.values())
    errors = sum(m.get("errors") or 0.0 for m in metrics.values())
    ratio = _ratio(errors, requests)
    with_traffic = [pod for pod, m in metrics.items() if (m.get("requests") or 0) > 0]
    p95s = [m["latency_p95_seconds"] for m in metrics.values() if m.get("latency_p95_seconds") is not None]
    median_p95 = statistics.median(p95s) if p95s else None
    worst_p95 = max(p95s) if p95s else None
    affected = tuple(
        sorted(
            pod
            for pod, m in metrics.items()
            if ((m.get("error_ratio") or 0) >= thresholds.error_ratio_degraded and (m.get("errors") or 0) >= 1)
            or (m.get("latency_p95_seconds") or 0) >= thresholds.latency_p95_seconds_degraded
        )
    )
    saturation = {pod: m["saturation"] for pod, m in metrics.items() if m.get("saturation") is not None}
    saturated = tuple(sorted(pod for pod, value in saturation.items() if value >= thresholds.saturation_threshold))

    latency_failing = median_p95 is not None and median_p95 >= thresholds.latency_p95_seconds_failing
    latency_degraded = median_p95 is not None and median_p95 >= thresholds.latency_p95_seconds_degraded
    few_errors = errors < thresholds.min_errors or requests < thresholds.min_requests
    figures = (
        f"{errors:,.0f} 5xx of {requests:,.0f} requests"
        + (f" ({ratio:.1%})" if ratio is not None else "")
        + (f", median p95 {median_p95 * 1000:,.0f} ms" if median_p95 is not None else "")
        + f" over {len(with_traffic)} pod(s)"
    )
    if few_errors and not latency_degraded:
        severity = NOISE
        reason = f"{figures}: under min_errors {thresholds.min_errors:g} / min_requests {thresholds.min_requests:g}"
    elif (ratio is not None and ratio >= thresholds.error_ratio_failing and not few_errors) or latency_failing:
        severity = FAILING
        reason = f"{figures}: at or above the failing thresholds"
    elif (ratio is not None and ratio >= thresholds.error_ratio_degraded and not few_errors) or latency_degraded:
        severity = DEGRADED
        reason = f"{figures}: at or above the degraded thresholds"
    else:
        severity = NOISE
        reason = f"{figures}: under the degraded thresholds"
    return Spread(
        requests=requests,
        errors=errors,
        error_ratio=ratio,
        pods_with_traffic=len(with_traffic),
        affected_pods=affected,
        median_p95_seconds=median_p95,
        worst_p95_seconds=worst_p95,
        saturated_pods=saturated,
        pods_with_saturation=len(saturation),
        severity=severity,
        reason=reason,
    )


def decide(
    spread: Spread,
    *,
    target: str,
    pods: Sequence[Mapping[str, Any]],
    owned_pods: Sequence[str],
    dependencies: Sequence[Mapping[str, Any]],
    replicas: int,
    max_replicas: int,
    scale_step: int,
    allow_restart: bool,
    allow_scale: bool,
) -> Decision:
    """What to do. ``pods``: health dicts (evidence.pod_health); ``owned_pods``: names of the pods whose owner chain
    leads to the Deployment; ``dependencies``: ``{"name", "ok", "detail"}``."""
    unhealthy = tuple(pod["name"] for pod in pods if pod.get("unhealthy"))
    severity = spread.severity
    if severity == NOISE and unhealthy:
        severity = DEGRADED
    if severity == NOISE:
        return Decision(severity, NONE, target, f"acknowledged and left: {spread.reason}")
    escalate = severity == FAILING
    failed = tuple(str(dep["name"]) for dep in dependencies if not dep.get("ok"))
    if failed:
        return Decision(
            severity,
            REPORT,
            target,
            f"{spread.reason}; dependency {', '.join(failed)} failed its check: restarting or scaling {target} "
            "would not help, its owners must look",
            failed_dependencies=failed,
            unhealthy_pods=unhealthy,
            notify_owner=True,
            escalate=escalate,
        )
    if unhealthy:
        owned = set(owned_pods)
        ours = tuple(pod for pod in unhealthy if pod in owned)
        if not ours:
            return Decision(
                severity,
                REPORT,
                target,
                f"{spread.reason}; unhealthy pod(s) {', '.join(unhealthy[:5])} are not owned by {target}: not restarted",
                unhealthy_pods=unhealthy,
                notify_owner=True,
                escalate=escalate,
            )
        reason = (
            f"{spread.reason}; {len(ours)} unhealthy pod(s) of {target} ({_pod_summary(pods, ours)}): restart {target}"
        )
        if not allow_restart:
            return Decision(
                severity,
                REPORT,
                target,
                reason + " (restart switched off: report only)",
                unhealthy_pods=ours,
                notify_owner=True,
                escalate=escalate,
            )
        return Decision(severity, RESTART, target, reason, unhealthy_pods=ours, escalate=escalate)
    saturated = spread.saturated_pods
    if saturated and len(saturated) * 2 >= max(1, spread.pods_with_saturation):
        wanted = min(max_replicas, replicas + scale_step)
        figures = f"{len(saturated)} of {spread.pods_with_saturation} pod(s) saturated"
        if wanted <= replicas:
            return Decision(
                severity,
                REPORT,
                target,
                f"{spread.reason}; {figures}, already at max_replicas {max_replicas}: capacity needs a person",
                from_replicas=replicas,
                notify_owner=True,
                escalate=escalate,
            )
        reason = f"{spread.reason}; {figures} and pods healthy: scale {target} from {replicas} to {wanted}"
        if not allow_scale:
            return Decision(
                severity,
                REPORT,
                target,
                reason + " (scaling switched off: report only)",
                from_replicas=replicas,
                to_replicas=wanted,
                notify_owner=True,
                escalate=escalate,
            )
        return Decision(severity, SCALE, target, reason, from_replicas=replicas, to_replicas=wanted, escalate=escalate)
    where = f" (most in {', '.join(spread.affected_pods[:5])})" if spread.affected_pods else ""
    return Decision(
        severity,
        REPORT,
        target,
        f"{spread.reason}{where}; pods healthy, not saturated, dependencies answer: the owning team must look",
        notify_owner=True,
        escalate=escalate,
    )


def _pod_summary(pods: Sequence[Mapping[str, Any]], names: Sequence[str]) -> str:
    by_name = {pod["name"]: pod for pod in pods}
    parts = []
    for name in names[:3]:
        pod = by_name.get(name) or {}
        detail = ", ".join(pod.get("reasons") or []) or ("not ready" if not pod.get("ready") else "")
        parts.append(f"{name}: {detail or 'unhealthy'}, {pod.get('restarts', 0)} restarts")
    more = f", and {len(names) - 3} more" if len(names) > 3 else ""
    return "; ".join(parts) + more


def recovered(spread: Spread, thresholds: Thresholds) -> bool | None:
    """After the action: True when the same PromQL shows the ratio and p95 under the degraded thresholds, False
    when they are still at or above them, None when there is no traffic yet to tell."""
    if spread.requests <= 0:
        return None
    ratio_ok = spread.error_ratio is None or spread.error_ratio < thresholds.error_ratio_degraded
    latency_ok = (
        spread.median_p95_seconds is None or spread.median_p95_seconds < thresholds.latency_p95_seconds_degraded
    )
    return ratio_ok and latency_ok
