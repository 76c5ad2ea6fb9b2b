"""The plan as Kubernetes objects: a strategic-merge patch per Deployment, the full manifests after it, new
components' Deployments and an optional HorizontalPodAutoscaler; all built as data (never typed by hand) and checked
offline against the Kubernetes OpenAPI schema. Pure, no Airflow.

Schema validation uses ``kubernetes-validate`` (PyPI), which ships the upstream JSON schemas in the package: no
network. Strict mode (``additionalProperties: false``) refuses ``Replicas`` or ``ApiVersion`` with capitals; names and
quantities, which the schema only types as strings, are checked against their own contracts
(:mod:`~toilless.sops.release_capacity_plan.contracts`). A patch is not a whole object, so it is validated by what it
produces: applied to the Deployment as read (the same merge the API server does for these fields: containers merged
by name), the result must pass.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from toilless.sops.release_capacity_plan.contracts import (
    ContractError,
    check_label,
    check_subdomain,
    cpu_millicores,
    memory_bytes,
)

#: Annotation recording which plan was applied: written in the same patch as the change (one atomic write), so a
#: retry that lost the answer sees that the change happened.
PLAN_ANNOTATION = "toilless.io/capacity-plan"
#: Metadata fields the API server owns: not part of a manifest anyone applies.
_SERVER_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink")


def deployment_patch(plan: Mapping[str, Any], *, plan_id: str | None = None) -> dict[str, Any]:
    """The strategic-merge patch for one planned Deployment (``DeploymentPlan`` as a dict): replicas and each
    container's requests/limits (containers are merged by name). With ``plan_id`` it also records the plan."""
    containers = []
    for container in plan["containers"]:
        requests = _present({"memory": container["memory_request"], "cpu": container["cpu_request"]})
        limits = _present({"memory": container["memory_limit"], "cpu": container["cpu_limit"]})
        resources = _present({"requests": requests, "limits": limits})
        if resources:
            containers.append({"name": container["name"], "resources": resources})
    patch: dict[str, Any] = {"spec": {"replicas": int(plan["replicas"])}}
    if containers:
        patch["spec"]["template"] = {"spec": {"containers": containers}}
    if plan_id:
        patch["metadata"] = {"annotations": {PLAN_ANNOTATION: plan_id}}
    return patch


def _present(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if value}


def clean_manifest(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """A Deployment as read from the API without what the server owns (status, uid, resourceVersion...)."""
    clean = {key: copy.deepcopy(value) for key, value in manifest.items() if key != "status"}
    metadata = clean.get("metadata") or {}
    for key in _SERVER_FIELDS:
        metadata.pop(key, None)
    annotations = metadata.get("annotations")
    if isinstance(annotations, dict):
        annotations.pop("deployment.kubernetes.io/revision", None)
        annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
        if not annotations:
            metadata.pop("annotations")
    return clean


def apply_patch(manifest: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``manifest`` with a strategic-merge ``patch`` applied: mappings merged, ``containers`` merged by name (their
    patch merge key), anything else replaced. Only what :func:`deployment_patch` writes needs to be right here."""
    return _merge(copy.deepcopy(dict(manifest)), patch)


def _merge(base: Any, patch: Any, key: str = "") -> Any:
    if isinstance(base, dict) and isinstance(patch, Mapping):
        for name, value in patch.items():
            base[name] = _merge(base.get(name), value, name) if name in base else copy.deepcopy(value)
        return base
    if key in ("containers", "initContainers") and isinstance(base, list) and isinstance(patch, list):
        by_name = {item.get("name"): index for index, item in enumerate(base) if isinstance(item, dict)}
        for item in patch:
            index = by_name.get(item.get("name"))
            if index is None:
                base.append(copy.deepcopy(item))
            else:
                base[index] = _merge(base[index], item)
        return base
    return copy.deepcopy(patch)


def component_manifest(component: Mapping[str, Any]) -> dict[str, Any]:
    """A Deployment for a new component (name, namespace, replicas, memory_request, cpu_request, image)."""
    name = check_label(component["name"], "new component name")
    labels = {"app.kubernetes.io/name": name}
    container: dict[str, Any] = {
        "name": name,
        "image": component.get("image") or f"{name}:RELEASE-IMAGE",
        "resources": {
            # Memory limit = request: a queue that fills must not push a node into eviction; CPU may burst.
            "requests": {"memory": component["memory_request"], "cpu": component["cpu_request"]},
            "limits": {"memory": component["memory_request"]},
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": component["namespace"], "labels": labels},
        "spec": {
            "replicas": int(component["replicas"]),
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


def hpa_manifest(
    plan: Mapping[str, Any], *, max_factor: float, target_cpu_utilisation_pct: int, max_replicas: int
) -> dict[str, Any] | None:
    """An autoscaling/v2 HorizontalPodAutoscaler suggestion: at least the planned replicas, up to ``max_factor`` times
    them (the release's upper user estimate over the planned one), scaling on CPU. None when no container has a CPU
    request (the HPA's utilisation is relative to the request)."""
    if not any(container["cpu_request"] for container in plan["containers"]):
        return None
    minimum = int(plan["replicas"])
    maximum = min(max(minimum, math.ceil(minimum * max_factor)), max(max_replicas, minimum))
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": plan["name"], "namespace": plan["namespace"]},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": plan["name"]},
            "minReplicas": minimum,
            "maxReplicas": maximum,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": int(target_cpu_utilisation_pct)},
                    },
                }
            ],
        },
    }


# -- validation ----------------------------------------------------------------------------------------------------


class ManifestInvalid(ContractError):
    """A rendered manifest fails the Kubernetes schema or a name/quantity contract: a bug or bad input, never sent."""


def validate_manifest(manifest: Mapping[str, Any], kubernetes_version: str) -> str:
    """Check ``manifest`` against the schema of ``kubernetes_version`` (strict) and the name and quantity contracts.

    Returns the schema version it was checked against (``"1.33"``); raises :class:`ManifestInvalid`.
    """
    import kubernetes_validate

    what = f"{manifest.get('kind', '?')} {(manifest.get('metadata') or {}).get('name', '?')}"
    for key in ("apiVersion", "kind"):
        if key not in manifest:
            raise ManifestInvalid(f"{what}: no {key!r} (keys are case-sensitive: {sorted(manifest)!r:.120})")
    try:
        version = kubernetes_validate.validate(dict(manifest), kubernetes_version, strict=True)
    except kubernetes_validate.ValidationError as err:
        path = "/".join(str(part) for part in err.path) or "(top)"
        raise ManifestInvalid(
            f"{what} fails the Kubernetes {kubernetes_version} schema at {path}: {err.message}"
        ) from err
    except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.utils.VersionNotSupportedError) as err:
        raise ManifestInvalid(f"{what}: {err}") from err
    try:
        _check_contracts(manifest, what)
    except ManifestInvalid:
        raise
    except ContractError as err:
        raise ManifestInvalid(str(err)) from err
    return str(version)


def _check_contracts(manifest: Mapping[str, Any], what: str) -> None:
    metadata = manifest.get("metadata") or {}
    check_subdomain(metadata.get("name"), f"{what} name")
    if metadata.get("namespace") is not None:
        check_label(metadata["namespace"], f"{what} namespace")
    template = ((manifest.get("spec") or {}).get("template") or {}).get("spec") or {}
    for container in [*template.get("containers", []), *template.get("initContainers", [])]:
        name = check_label(container.get("name"), f"{what} container name")
        resources = container.get("resources") or {}
        for kind in ("requests", "limits"):
            for resource, quantity in (resources.get(kind) or {}).items():
                where = f"{what} container {name} {resource} {kind[:-1]}"
                if resource == "memory":
                    memory_bytes(quantity, where)
                elif resource == "cpu":
                    cpu_millicores(quantity, where)


def validate_all(manifests: Iterable[Mapping[str, Any]], kubernetes_version: str) -> str:
    """Validate every manifest; the schema version used (every call names the same one)."""
    version = kubernetes_version
    for manifest in manifests:
        version = validate_manifest(manifest, kubernetes_version)
    return version


def render_yaml(documents: Sequence[Mapping[str, Any]]) -> str:
    """Manifests as one multi-document YAML text, keys in the order Kubernetes writes them."""
    import yaml

    return yaml.safe_dump_all([dict(document) for document in documents], sort_keys=False, default_flow_style=False)
