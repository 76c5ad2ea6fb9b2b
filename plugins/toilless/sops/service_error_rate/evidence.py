"""What the SOP looks at, as plain data: per-pod metrics from the PromQL answers, pod health from the Pod objects.

Pure: the inputs are the query answers (pod -> value) and the API's Pod JSON (camelCase); no Airflow, no network.
Everything from outside is bounded here (pods kept, reasons per pod) so that XCom and Slack stay small.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: Most pods carried in evidence (metrics and health); the rest are counted, not listed.
MAX_PODS = 200
#: Waiting/terminated reasons that mean a container is not serving (kubectl's STATUS column).
BAD_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "OOMKilled",
        "Error",
        "ImagePullBackOff",
        "ErrImagePull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "ContainerCannotRun",
    }
)


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


def pod_health(pod: Mapping[str, Any], *, unhealthy_restarts: int) -> dict[str, Any]:
    """One Pod's health: phase, ready, restarts, bad reasons, owner (ReplicaSet), and whether it is unhealthy."""
    metadata = pod.get("metadata") or {}
    status = pod.get("status") or {}
    reasons: set[str] = set()
    restarts = 0
    all_ready = True
    statuses = list(status.get("containerStatuses") or [])
    for container in statuses:
        restarts += int(container.get("restartCount") or 0)
        all_ready = all_ready and bool(container.get("ready"))
        for key in ("state", "lastState"):
            state = container.get(key) or {}
            for phase in ("waiting", "terminated"):
                reason = (state.get(phase) or {}).get("reason")
                if reason in BAD_REASONS and not (key == "lastState" and reason == "Error" and container.get("ready")):
                    reasons.add(str(reason))
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or [] if isinstance(c, Mapping)}
    ready = (conditions.get("Ready") == "True") if "Ready" in conditions else (bool(statuses) and all_ready)
    phase = str(status.get("phase") or "Unknown")
    owners = [ref for ref in metadata.get("ownerReferences") or [] if isinstance(ref, Mapping)]
    owner = next((f"{ref.get('kind')}/{ref.get('name')}" for ref in owners if ref.get("controller")), "")
    unhealthy = (
        not ready
        or phase not in ("Running",)
        or bool(reasons & {"CrashLoopBackOff", "OOMKilled", "ImagePullBackOff", "ErrImagePull"})
        or restarts >= unhealthy_restarts
    )
    return {
        "name": str(metadata.get("name") or "")[:253],
        "phase": phase[:40],
        "ready": ready,
        "restarts": restarts,
        "reasons": sorted(reasons)[:5],
        "owner": owner[:300],
        "terminating": bool(metadata.get("deletionTimestamp")),
        "unhealthy": unhealthy and not metadata.get("deletionTimestamp"),
    }


def pods_health(pods: Iterable[Mapping[str, Any]], *, unhealthy_restarts: int) -> list[dict[str, Any]]:
    health = [pod_health(pod, unhealthy_restarts=unhealthy_restarts) for pod in pods]
    health.sort(key=lambda pod: (not pod["unhealthy"], pod["name"]))
    return health[:MAX_PODS]


def owned_by_deployment(pod: Mapping[str, Any], replica_sets: Mapping[str, str], deployment: str) -> bool:
    """True if the pod's controller is a ReplicaSet whose controller is ``deployment``.

    ``replica_sets`` maps ReplicaSet name -> its controlling Deployment's name (from the ReplicaSets' own
    ownerReferences). This is what "the failing pods' owner" means: only that Deployment is ever restarted.
    """
    owner = str(pod.get("owner") or "")
    kind, _, name = owner.partition("/")
    return kind == "ReplicaSet" and replica_sets.get(name) == deployment


def replica_set_owners(replica_sets: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """ReplicaSet name -> the Deployment that controls it (ReplicaSets without one are left out)."""
    owners: dict[str, str] = {}
    for replica_set in replica_sets:
        metadata = replica_set.get("metadata") or {}
        for ref in metadata.get("ownerReferences") or []:
            if isinstance(ref, Mapping) and ref.get("controller") and ref.get("kind") == "Deployment":
                owners[str(metadata.get("name"))] = str(ref.get("name"))
    return owners
