"""What the SOP looks at, as plain data: per-pod metrics from the PromQL answers, pod health from the Pod objects.

Pure: the inputs are the query answers (pod -> value) and the API's Pod JSON (camelCase); no Airflow, no network.
Everything from outside is bounded here (pods kept, reasons per pod) so that XCom and Slack stay small.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

#: Most pods carried in evidence (metrics and health); the rest are counted, not listed.
MAX_PODS = 200


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def per_pod_metrics(answers: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float | None]]:
    """``{"requests": {pod: v}, "errors": {...}, ...}`` -> ``{pod: {"requests": v, "errors": v, ...}}``.

    A pod with requests but no 5xx series gets ``errors = 0`` (``code=~"5.."`` matches nothing there); NaN (a
    histogram_quantile over no traffic) and infinities become None: unknown, not a number to compare.
    """
    pods: dict[str, dict[str, float | None]] = {}
    for name, values in answers.items():
        for pod, value in values.items():
            pods.setdefault(str(pod), {})[name] = _finite(value)
    for metrics in pods.values():
        if metrics.get("requests") is not None and metrics.get("errors") is None:
            metrics["errors"] = 0.0
        requests = metrics.get("requests")
        errors = metrics.get("errors")
        metrics["error_ratio"] = errors / requests if requests and errors is not None and requests > 0 else None
    ordered = sorted(pods.items(), key=lambda item: (-(item[1].get("errors") or 0), item[0]))
    return dict(ordered[:MAX_PODS])


def controller_of(pod: Mapping[str, Any]) -> str:
    """``"<Kind>/<name>"`` of the Pod's controlling owner reference ("" when it has none)."""
    metadata = pod.get("metadata") or {}
    for ref in metadata.get("ownerReferences") or []:
        if isinstance(ref, Mapping) and ref.get("controller"):
            return f"{ref.get('kind')}/{ref.get('name')}"[:300]
    return ""


def assess_pod(health: Mapping[str, Any], *, owner: str, unhealthy_restarts: int) -> dict[str, Any]:
    """One pod's health (``toilless.common.kubernetes_contracts.pod_health``) with its owner and the SOP's verdict:
    unhealthy when not ready, not Running, crash-looping, OOMKilled, failing to pull its image, or restarted at
    least ``unhealthy_restarts`` times."""
    reasons = [str(reason) for reason in health.get("reasons") or []][:5]
    unhealthy = (
        not health.get("ready")
        or health.get("phase") != "Running"
        or bool(health.get("crash_loop"))
        or bool(health.get("oom_killed"))
        or bool(health.get("image_pull_error"))
        or int(health.get("restarts") or 0) >= unhealthy_restarts
    )
    return {
        "name": str(health.get("name") or "")[:253],
        "phase": str(health.get("phase") or "Unknown")[:40],
        "ready": bool(health.get("ready")),
        "restarts": int(health.get("restarts") or 0),
        "reasons": reasons,
        "owner": owner,
        "unhealthy": unhealthy,
    }


def owned_by_deployment(pod: Mapping[str, Any], owned_replica_sets: Iterable[str]) -> bool:
    """True if the pod's controller is one of the Deployment's own ReplicaSets (their ownerReferences checked by the
    hook). This is what "the failing pods' owner" means: only that Deployment is ever restarted."""
    kind, _, name = str(pod.get("owner") or "").partition("/")
    return kind == "ReplicaSet" and name in set(owned_replica_sets)
