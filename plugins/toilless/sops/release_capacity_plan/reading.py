"""The plan's inputs from outside: a Deployment as the API returns it, PodMetrics from the metrics API, a new component
from the Params. Every value is checked against Kubernetes' contracts here, before any planning. Pure, no Airflow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from toilless.sops.release_capacity_plan.contracts import (
    ContractError,
    check_label,
    check_subdomain,
    cpu_millicores,
    memory_bytes,
)
from toilless.sops.release_capacity_plan.plan import (
    ContainerNow,
    DeploymentNow,
    NewComponent,
    check_percent,
    check_whole,
)


def deployment_from_manifest(
    manifest: Mapping[str, Any], usage: Mapping[str, Mapping[str, int]] | None = None
) -> DeploymentNow:
    """What the plan needs from a Deployment read from the API (camelCase JSON), every value checked; ``usage``:
    measured peak per container (``{"app": {"memory": bytes, "cpu": millicores}}``, see :func:`peak_usage`)."""
    metadata = manifest.get("metadata") or {}
    spec = manifest.get("spec") or {}
    namespace = check_label(metadata.get("namespace"), "namespace")
    name = check_subdomain(metadata.get("name"), "Deployment name")
    replicas = spec.get("replicas", 1)
    check_whole(replicas, f"{namespace}/{name} replicas", minimum=0)
    containers = []
    for container in ((spec.get("template") or {}).get("spec") or {}).get("containers") or []:
        cname = check_label(container.get("name"), f"{namespace}/{name} container name")
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        where = f"{namespace}/{name} {cname}"
        containers.append(
            ContainerNow(
                cname,
                memory_request=_optional(requests.get("memory"), memory_bytes, f"{where} memory request"),
                memory_limit=_optional(limits.get("memory"), memory_bytes, f"{where} memory limit"),
                cpu_request=_optional(requests.get("cpu"), cpu_millicores, f"{where} cpu request"),
                cpu_limit=_optional(limits.get("cpu"), cpu_millicores, f"{where} cpu limit"),
                memory_used=((usage or {}).get(cname) or {}).get("memory"),
                cpu_used=((usage or {}).get(cname) or {}).get("cpu"),
            )
        )
    if not containers:
        raise ContractError(f"{namespace}/{name} has no containers")
    return DeploymentNow(namespace, name, replicas, tuple(containers))


def peak_usage(pod_metrics: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """The highest usage per container across the pods' PodMetrics (metrics.k8s.io): a plan sized for the busiest
    pod holds the others. Quantities are checked like any other (a server answer is outside input)."""
    peak: dict[str, dict[str, int]] = {}
    for pod in pod_metrics:
        for container in _objects(_mapping(pod, "PodMetrics").get("containers"), "PodMetrics containers"):
            name = check_label(container.get("name"), "PodMetrics container name")
            usage = _mapping(container.get("usage") or {}, f"PodMetrics {name} usage")
            seen = peak.setdefault(name, {})
            if usage.get("memory") is not None:
                memory = memory_bytes(usage["memory"], f"{name} memory usage")
                seen["memory"] = max(seen.get("memory", 0), memory)
            if usage.get("cpu") is not None:
                seen["cpu"] = max(seen.get("cpu", 0), cpu_millicores(usage["cpu"], f"{name} cpu usage"))
    return peak


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ContractError(f"{what} must be an object, got {type(value).__name__}")
    return value


def _objects(value: Any, what: str) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ContractError(f"{what} must be a list, got {type(value).__name__}")
    return [_mapping(item, what) for item in value]


def _optional(value: Any, parse: Any, what: str) -> int | None:
    return None if value is None else parse(value, what)


def component_from_param(spec: Mapping[str, Any]) -> NewComponent:
    """A new component from the ``new_components`` Param: ``{"name", "memory", "cpu" | "cpu_factor_of_app",
    "replicas", "image"}``; every value checked (``512mb`` and ``order_processor`` are refused here)."""
    if not isinstance(spec, Mapping):
        raise ContractError(f"a new component must be an object, got {spec!r:.80}")
    unknown = set(spec) - {"name", "memory", "cpu", "cpu_factor_of_app", "replicas", "image"}
    if unknown:
        raise ContractError(f"new component: unknown field(s) {sorted(unknown)}")
    name = check_label(spec.get("name"), "new component name")
    replicas = spec.get("replicas", 1)
    check_whole(replicas, f"new component {name} replicas", minimum=1)
    factor = spec.get("cpu_factor_of_app")
    if factor is not None:
        check_percent(factor, f"new component {name} cpu_factor_of_app", maximum=100, positive=True)
    image = spec.get("image") or ""
    if not isinstance(image, str) or len(image) > 512 or any(ch.isspace() for ch in image):
        raise ContractError(f"new component {name}: image must be an image reference without spaces")
    return NewComponent(
        name=name,
        memory=memory_bytes(spec.get("memory"), f"new component {name} memory"),
        replicas=replicas,
        cpu_factor_of_app=factor,
        cpu=_optional(spec.get("cpu"), cpu_millicores, f"new component {name} cpu"),
        image=image,
    )
