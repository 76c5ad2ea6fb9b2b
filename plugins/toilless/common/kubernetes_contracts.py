"""The Kubernetes API contracts Toilless relies on, checked where each request is built, and the API's JSON read back.

kmock (the emulator the tests use) accepts any name and any number; the real API server refuses them with 422 after
a round trip, or worse, accepts a value that means something else. So every value sent goes through a check here:

* Namespace, container name: DNS-1123 label (``[a-z0-9]([-a-z0-9]*[a-z0-9])?``, at most 63 characters).
* Deployment, ReplicaSet, Pod, Ingress name: DNS-1123 subdomain (labels joined by ``.``, at most 253 characters).
* Service name: DNS-1035 label (a DNS-1123 label that starts with a letter).
* Replicas (scale subresource ``spec.replicas``): a whole number >= 0 (int32); Toilless also caps it (``MAX_REPLICAS``).
* Revision (``deployment.kubernetes.io/revision``): a whole number >= 1 (int64 in kubectl; 0 means "previous").
* Pod log ``tailLines``: a whole number >= 1; capped at ``MAX_TAIL_LINES`` so one read stays bounded.

It also turns the API's JSON (camelCase, as kubectl shows it) into the small summaries the SOPs reason on:
:func:`replica_set_revision` (rollout history), :func:`pod_health` (phase, readiness, restarts, OOMKilled,
CrashLoopBackOff, image pull errors), :func:`rollout_status` and :func:`rollback_patch` (what ``kubectl rollout undo``
sends). Pure: no Airflow, no kubernetes client.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from toilless.common.errors import InvalidInput

LABEL_MAX = 63
SUBDOMAIN_MAX = 253
MAX_REPLICAS = 1000
MAX_TAIL_LINES = 10_000
INT32_MAX = 2**31 - 1

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?\Z")

REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
POD_TEMPLATE_HASH = "pod-template-hash"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
#: Deployment annotations ``kubectl rollout undo`` keeps from the Deployment instead of copying from the ReplicaSet
#: (k8s.io/kubectl/pkg/polymorphichelpers/rollback.go, ``annotationsToSkip``).
ROLLBACK_SKIPPED_ANNOTATIONS = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)
#: Container waiting reasons that mean the image cannot be pulled.
IMAGE_PULL_REASONS = frozenset({"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"})


class KubernetesContractError(InvalidInput):
    """A value Toilless was about to send breaks the Kubernetes API's contract (or an answer breaks its shape)."""


# -- values sent ------------------------------------------------------------------------------------------------------
def dns1123_label(value: Any, what: str = "name") -> str:
    """``value`` if it is a DNS-1123 label (namespaces, container names)."""
    if not isinstance(value, str) or not value:
        raise KubernetesContractError(f"{what} must be a non-empty string, got {_show(value)}")
    if len(value) > LABEL_MAX or not _DNS1123_LABEL.fullmatch(value):
        raise KubernetesContractError(
            f"{what} {_show(value)} is not a DNS-1123 label (lowercase letters, digits and '-', starting and ending "
            f"with a letter or digit, at most {LABEL_MAX} characters)"
        )
    return value


def dns1123_subdomain(value: Any, what: str = "name") -> str:
    """``value`` if it is a DNS-1123 subdomain (Deployments, ReplicaSets, Pods, Ingresses)."""
    if not isinstance(value, str) or not value:
        raise KubernetesContractError(f"{what} must be a non-empty string, got {_show(value)}")
    if len(value) > SUBDOMAIN_MAX or not all(_DNS1123_LABEL.fullmatch(part) for part in value.split(".")):
        raise KubernetesContractError(
            f"{what} {_show(value)} is not a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', each part "
            f"starting and ending with a letter or digit, at most {SUBDOMAIN_MAX} characters)"
        )
    return value


def dns1035_label(value: Any, what: str = "Service name") -> str:
    """``value`` if it is a DNS-1035 label (Service names: must start with a letter)."""
    dns1123_label(value, what)
    if not _DNS1035_LABEL.fullmatch(value):
        raise KubernetesContractError(f"{what} {_show(value)} is not a DNS-1035 label (it must start with a letter)")
    return value


def whole_number(value: Any, what: str, *, minimum: int, maximum: int) -> int:
    """``value`` if it is an int (not a bool, not a float) within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise KubernetesContractError(f"{what} must be a whole number, got {_show(value)}")
    if not minimum <= value <= maximum:
        raise KubernetesContractError(f"{what} {value} is outside {minimum}..{maximum}")
    return value


def replicas(value: Any, *, maximum: int = MAX_REPLICAS) -> int:
    return whole_number(value, "replicas", minimum=0, maximum=min(maximum, INT32_MAX))


def revision(value: Any) -> int:
    return whole_number(value, "revision", minimum=1, maximum=2**63 - 1)


def tail_lines(value: Any) -> int:
    return whole_number(value, "tail_lines", minimum=1, maximum=MAX_TAIL_LINES)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# -- answers read back ------------------------------------------------------------------------------------------------
def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    return meta if isinstance(meta, Mapping) else {}


def parse_revision(obj: Mapping[str, Any]) -> int | None:
    """The object's ``deployment.kubernetes.io/revision`` annotation as a number (None when absent or malformed)."""
    raw = (_meta(obj).get("annotations") or {}).get(REVISION)
    if not isinstance(raw, str) or not raw.isdigit() or len(raw) > 18:
        return None
    return int(raw)


def images(template: Mapping[str, Any]) -> list[str]:
    """The images of a pod template's containers, in order."""
    spec = template.get("spec") if isinstance(template, Mapping) else None
    containers = (spec or {}).get("containers") or []
    return [str(c.get("image", "")) for c in containers if isinstance(c, Mapping)]


def owned_by(obj: Mapping[str, Any], deployment: Mapping[str, Any]) -> bool:
    """Whether ``obj`` (a ReplicaSet) is controlled by ``deployment`` (controller owner reference; uid when known)."""
    uid = _meta(deployment).get("uid")
    for ref in _meta(obj).get("ownerReferences") or []:
        if not isinstance(ref, Mapping) or ref.get("kind") != "Deployment" or not ref.get("controller", True):
            continue
        if ref.get("name") == _meta(deployment).get("name") and (not uid or not ref.get("uid") or ref["uid"] == uid):
            return True
    return False


def matches_labels(obj: Mapping[str, Any], match_labels: Mapping[str, str]) -> bool:
    labels = _meta(obj).get("labels") or {}
    return all(labels.get(key) == value for key, value in match_labels.items())


def label_selector(match_labels: Mapping[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(match_labels.items()))


def replica_set_revision(replica_set: Mapping[str, Any]) -> dict[str, Any]:
    """One line of rollout history: name, revision, images, change-cause, created, replicas (desired/ready)."""
    meta = _meta(replica_set)
    spec = replica_set.get("spec") or {}
    status = replica_set.get("status") or {}
    template = spec.get("template") or {}
    return {
        "name": str(meta.get("name", "")),
        "revision": parse_revision(replica_set),
        "images": images(template),
        "change_cause": str((meta.get("annotations") or {}).get(CHANGE_CAUSE, "")),
        "created": meta.get("creationTimestamp"),
        "replicas": int(spec.get("replicas") or 0),
        "ready_replicas": int(status.get("readyReplicas") or 0),
    }


def pod_health(pod: Mapping[str, Any]) -> dict[str, Any]:
    """A pod's health as an on-call engineer reads ``kubectl get pods`` + ``describe``: phase, ready, restarts and
    the reasons that matter (OOMKilled, CrashLoopBackOff, image pull errors), per container summed up."""
    meta = _meta(pod)
    status = pod.get("status") or {}
    containers = [c for c in status.get("containerStatuses") or [] if isinstance(c, Mapping)]
    reasons: list[str] = []
    restarts = 0
    restarted: list[str] = []
    for container in containers:
        restarts += int(container.get("restartCount") or 0)
        if int(container.get("restartCount") or 0) > 0:
            restarted.append(str(container.get("name", "")))
        for key in ("state", "lastState"):
            state = container.get(key) or {}
            for phase in ("waiting", "terminated"):
                reason = (state.get(phase) or {}).get("reason")
                if isinstance(reason, str) and reason and reason not in reasons and reason != "Completed":
                    reasons.append(reason)
    ready = bool(containers) and all(bool(c.get("ready")) for c in containers)
    return {
        "name": str(meta.get("name", "")),
        "phase": str(status.get("phase", "Unknown")),
        "ready": ready,
        "restarts": restarts,
        "restarted_containers": restarted,
        "reasons": reasons[:10],
        "oom_killed": "OOMKilled" in reasons,
        "crash_loop": "CrashLoopBackOff" in reasons,
        "image_pull_error": any(reason in IMAGE_PULL_REASONS for reason in reasons),
        "created": meta.get("creationTimestamp"),
        "images": [str(c.get("image", "")) for c in containers] or images(pod),
    }


def rollout_status(deployment: Mapping[str, Any]) -> dict[str, Any]:
    """What ``kubectl rollout status`` checks: the controller saw the latest generation and every replica is updated
    and available (and no old replica is left)."""
    meta = _meta(deployment)
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    desired = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    generation = int(meta.get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    total = int(status.get("replicas") or 0)
    complete = observed >= generation and updated >= desired and available >= desired and total <= updated
    return {
        "generation": generation,
        "observed_generation": observed,
        "desired": desired,
        "replicas": total,
        "updated": updated,
        "ready": int(status.get("readyReplicas") or 0),
        "available": available,
        "complete": complete,
        "revision": parse_revision(deployment),
        "images": images(spec.get("template") or {}),
    }


def template_without_hash(template: Mapping[str, Any]) -> dict[str, Any]:
    """A pod template without the ``pod-template-hash`` label the controller adds to a ReplicaSet's copy."""
    result = copy.deepcopy(dict(template))
    labels = (result.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH, None)
    return result


def rollback_patch(
    deployment: Mapping[str, Any], replica_set: Mapping[str, Any], *, extra_annotations: Mapping[str, str] = {}
) -> list[dict[str, Any]]:
    """The JSON patch ``kubectl rollout undo`` sends (rollback.go ``getDeploymentPatch``): the ReplicaSet's pod template
    (minus ``pod-template-hash``) replaces ``/spec/template``; ``/metadata/annotations`` becomes the Deployment's own
    skipped annotations plus the ReplicaSet's others (its change-cause among them). ``extra_annotations`` (a
    Toilless marker) ride in the same write, so the marker and the rollback are one atomic change."""
    annotations: dict[str, str] = {}
    own = _meta(deployment).get("annotations") or {}
    for key in ROLLBACK_SKIPPED_ANNOTATIONS:
        if key in own:
            annotations[key] = own[key]
    for key, value in (_meta(replica_set).get("annotations") or {}).items():
        if key not in ROLLBACK_SKIPPED_ANNOTATIONS:
            annotations[key] = value
    annotations.update(extra_annotations)
    template = template_without_hash((replica_set.get("spec") or {}).get("template") or {})
    return [
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]


def previous_revision(revisions: list[int]) -> int | None:
    """kubectl's "previous": the highest revision below the latest (None with fewer than two)."""
    ordered = sorted(set(revisions))
    return ordered[-2] if len(ordered) >= 2 else None
