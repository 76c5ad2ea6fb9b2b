"""Kubernetes workloads (Deployments, their ReplicaSets and Pods, Services, Ingresses) through the cncf-kubernetes
provider's KubernetesHook (a kubeconfig in the Connection's ``kube_config`` extra, or in-cluster).
Over 400 lines because one system has one hook module (issue 14 merged the two); its pure parts are already in
``toilless.common.kubernetes_contracts``.

Public API (stable; every name and number is validated in code before it is sent, see
:mod:`toilless.common.kubernetes_contracts`; objects come back as the API's own JSON, camelCase, as kubectl shows them)::

    hook = KubernetesWorkloadHook(kubernetes_conn_id="kubernetes_default")
    hook.read_deployment(ns, name) -> dict            # DeploymentNotFound (404), NamespaceNotReadable (401/403)
    hook.rollout_status(ns, name) -> dict             # generation/observed, desired/updated/ready/available, complete
    hook.deployment_revisions(ns, name) -> list[dict] # ReplicaSets by revision, oldest first:
                                                      #   {name, revision, images, change_cause, created, replicas,
                                                      #    ready_replicas}
    hook.deployment_pods(ns, name) -> list[dict]      # pod_health(): {name, phase, ready, restarts, restarted_containers,
                                                      #   reasons, oom_killed, crash_loop, image_pull_error, created,
                                                      #   images}
    hook.pod_log_tail(ns, pod, tail_lines=100, container="", previous=False) -> list[str]
    hook.read_service(ns, name) / hook.read_ingress(ns, name) -> dict  # (ServiceNotFound / IngressNotFound on 404)
    hook.rollback_deployment(ns, name, to_revision=0, annotations={}) -> dict   # kubectl rollout undo [--to-revision]
    hook.restart_deployment(ns, name, now=..., annotations={}) -> dict          # kubectl rollout restart
    hook.scale_deployment(ns, name, replicas=N) -> dict                         # kubectl scale --replicas=N
    hook.patch_deployment(ns, name, patch) -> dict    # strategic-merge patch (release_capacity_plan)
    hook.pod_metrics(ns, match_labels) -> list[dict]  # metrics.k8s.io PodMetrics

``annotations`` on an action are written in the same request as the action (a marker naming the incident), so a
retry that lost the answer still sees, on the Deployment itself, that the action happened. No SOP logic here: which
action, when, and whether it is allowed is the caller's (through the action gate).

``KubernetesDeploymentHook`` is the same hook bound to one Deployment (order_backlog_check): its newest pod's log and
a rollout restart that records the incident and recent restarts in the pod template's annotations.

Request bodies, as kubectl sends them (k8s.io/kubectl):

* rollback: JSON patch (``application/json-patch+json``) replacing ``/spec/template`` with the ReplicaSet's template
  minus the ``pod-template-hash`` label, and ``/metadata/annotations`` (rollback.go ``getDeploymentPatch``); skipped
  without a request when the template already matches (kubectl prints "skipped rollback");
* restart: strategic merge patch ``{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":
  RFC 3339}}}}}``;
* scale: merge patch ``{"spec":{"replicas":N}}`` to the ``scale`` subresource.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from toilless.common import kubernetes_contracts as contracts
from toilless.common.errors import InvalidInput
from toilless.common.kubernetes_contracts import KubernetesContractError

if TYPE_CHECKING:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

log = logging.getLogger(__name__)

RESTARTED_AT = contracts.RESTARTED_AT
INCIDENT = "toilless.io/restart-incident"
#: Recent restarts by Toilless (epoch seconds), for the action gate's circuit breaker.
HISTORY = "toilless.io/restart-history"

#: Bounds on what one listing returns (a Deployment keeps 10 old ReplicaSets by default).
MAX_REPLICA_SETS = 100
MAX_PODS = 500

STRATEGIC_MERGE = "application/strategic-merge-patch+json"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"

__all__ = [
    "HISTORY",
    "INCIDENT",
    "RESTARTED_AT",
    "DeploymentNotFound",
    "IngressNotFound",
    "KubernetesContractError",
    "KubernetesDeploymentHook",
    "KubernetesWorkloadHook",
    "NamespaceNotReadable",
    "RevisionNotFound",
    "ServiceNotFound",
    "tail_of_stream",
]


class DeploymentNotFound(InvalidInput):
    """The Deployment named does not exist (Kubernetes answered 404): the same on every try, never retried."""


class ServiceNotFound(InvalidInput):
    """The Service named does not exist (404)."""


class IngressNotFound(InvalidInput):
    """The Ingress named does not exist (404)."""


class NamespaceNotReadable(InvalidInput):
    """The Connection's credentials may not read the namespace (401/403): a permission to grant, not to retry."""


class RevisionNotFound(InvalidInput):
    """The rollout history has no such revision (or no previous one): kubectl's "unable to find specified revision"."""


def _api_error(err: Exception, what: str, namespace: str, not_found: type[InvalidInput]) -> Exception:
    status = getattr(err, "status", None)
    if status == 404:
        return not_found(
            f"{what} does not exist in namespace {namespace!r} (Kubernetes answered 404): check the names in the "
            "configuration or the Params"
        )
    if status in (401, 403):
        return NamespaceNotReadable(
            f"the Kubernetes Connection may not read {what} in namespace {namespace!r} (answered {status}): grant "
            "its service account get/list/patch there"
        )
    return err


class KubernetesWorkloadHook(BaseHook):
    """Reads and changes Deployments (and reads their ReplicaSets, Pods, Services and Ingresses) like kubectl.

    :param kubernetes_conn_id: cncf-kubernetes Connection.
    """

    conn_name_attr = "kubernetes_conn_id"
    default_conn_name = "kubernetes_default"
    conn_type = "kubernetes"
    hook_name = "Kubernetes workloads"

    def __init__(self, *, kubernetes_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.kubernetes_conn_id = kubernetes_conn_id

    @cached_property
    def kube(self) -> KubernetesHook:
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

        return KubernetesHook(conn_id=self.kubernetes_conn_id)

    def _json(self, obj: Any) -> dict[str, Any]:
        # The API's JSON (camelCase) from the client's model: what kubectl shows and what a manifest holds.
        return self.kube.api_client.sanitize_for_serialization(obj)

    @staticmethod
    def _raw(response: Any) -> dict[str, Any]:
        # _preload_content=False: the answer's JSON as sent, without the client's model (whose validation rejects
        # shapes a server may legally send, e.g. a Scale without status.replicas).
        try:
            data = response.data
        finally:
            response.release_conn()
        value = json.loads(data or b"{}")
        if not isinstance(value, dict):
            raise KubernetesContractError(f"Kubernetes answered {type(value).__name__}, not an object")
        return value

    # -- reads ---------------------------------------------------------------------------------------------------
    def read_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        """The Deployment as the API returns it; :class:`DeploymentNotFound` when it does not exist."""
        from kubernetes.client.exceptions import ApiException

        contracts.dns1123_label(namespace, "namespace")
        contracts.dns1123_subdomain(name, "Deployment name")
        try:
            response = self.kube.apps_v1_client.read_namespaced_deployment(name, namespace, _preload_content=False)
        except ApiException as err:
            raise _api_error(err, f"Deployment {name!r}", namespace, DeploymentNotFound) from err
        return self._raw(response)

    def rollout_status(self, namespace: str, name: str) -> dict[str, Any]:
        """:func:`toilless.common.kubernetes_contracts.rollout_status` of the Deployment read now."""
        return contracts.rollout_status(self.read_deployment(namespace, name))

    def _replica_sets(self, namespace: str, deployment: Mapping[str, Any]) -> list[dict[str, Any]]:
        from kubernetes.client.exceptions import ApiException

        match_labels = dict(((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
        try:
            response = self.kube.apps_v1_client.list_namespaced_replica_set(
                namespace, label_selector=contracts.label_selector(match_labels), _preload_content=False
            )
        except ApiException as err:
            raise _api_error(err, "ReplicaSets", namespace, DeploymentNotFound) from err
        items = self._raw(response).get("items") or []
        # Selecting is the API server's job; the owner is what kubectl checks (controller reference).
        owned = [
            item
            for item in items
            if isinstance(item, dict)
            and contracts.matches_labels(item, match_labels)
            and contracts.owned_by(item, deployment)
        ]
        return owned[:MAX_REPLICA_SETS]

    def deployment_revisions(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The rollout history: the Deployment's ReplicaSets by revision, oldest first (those without one last)."""
        deployment = self.read_deployment(namespace, name)
        rows = [contracts.replica_set_revision(rs) for rs in self._replica_sets(namespace, deployment)]
        return sorted(rows, key=lambda row: (row["revision"] is None, row["revision"] or 0))

    def deployment_pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """Health of the Deployment's pods (selected by its matchLabels), newest first."""
        from kubernetes.client.exceptions import ApiException

        deployment = self.read_deployment(namespace, name)
        match_labels = dict(((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
        try:
            response = self.kube.core_v1_client.list_namespaced_pod(
                namespace, label_selector=contracts.label_selector(match_labels), _preload_content=False
            )
        except ApiException as err:
            raise _api_error(err, "Pods", namespace, DeploymentNotFound) from err
        pods = [
            item
            for item in self._raw(response).get("items") or []
            if isinstance(item, dict)
            and contracts.matches_labels(item, match_labels)
            and not (item.get("metadata") or {}).get("deletionTimestamp")
        ]
        health = [contracts.pod_health(pod) for pod in pods[:MAX_PODS]]
        return sorted(health, key=lambda pod: str(pod["created"] or ""), reverse=True)

    def pod_log_tail(
        self,
        namespace: str,
        pod: str,
        *,
        tail_lines: int = 100,
        container: str = "",
        previous: bool = False,
        max_bytes: int = 256 * 1024,
    ) -> list[str]:
        """The last ``tail_lines`` lines of a pod's container log (``previous=True``: of the container's previous,
        restarted instance, where a crash-looping app's error is). At most ``max_bytes`` are kept."""
        contracts.dns1123_label(namespace, "namespace")
        contracts.dns1123_subdomain(pod, "Pod name")
        contracts.tail_lines(tail_lines)
        kwargs: dict[str, Any] = {"tail_lines": tail_lines, "_preload_content": False}
        if container:
            kwargs["container"] = contracts.dns1123_label(container, "container name")
        if previous:
            kwargs["previous"] = True
        from kubernetes.client.exceptions import ApiException

        try:
            response = self.kube.core_v1_client.read_namespaced_pod_log(pod, namespace, **kwargs)
        except ApiException as err:
            if err.status == 400 and previous:
                return []  # no previous container (never restarted): nothing to read, not an error
            raise _api_error(err, f"the log of pod {pod!r}", namespace, DeploymentNotFound) from err
        try:
            data, cut, _complete = tail_of_stream(response.read, max_bytes=max_bytes, max_read_bytes=8 * max_bytes)
        finally:
            response.release_conn()
        lines = data.decode("utf-8", errors="replace").splitlines()
        return lines[1:] if cut and lines else lines

    def read_service(self, namespace: str, name: str) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        contracts.dns1123_label(namespace, "namespace")
        contracts.dns1035_label(name, "Service name")
        try:
            response = self.kube.core_v1_client.read_namespaced_service(name, namespace, _preload_content=False)
        except ApiException as err:
            raise _api_error(err, f"Service {name!r}", namespace, ServiceNotFound) from err
        return self._raw(response)

    def read_ingress(self, namespace: str, name: str) -> dict[str, Any]:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        contracts.dns1123_label(namespace, "namespace")
        contracts.dns1123_subdomain(name, "Ingress name")
        try:
            response = client.NetworkingV1Api(self.kube.api_client).read_namespaced_ingress(
                name, namespace, _preload_content=False
            )
        except ApiException as err:
            raise _api_error(err, f"Ingress {name!r}", namespace, IngressNotFound) from err
        return self._raw(response)

    def pod_metrics(self, namespace: str, match_labels: dict[str, str]) -> list[dict[str, Any]]:
        """Current usage of the pods matching ``match_labels`` from the metrics API (``metrics.k8s.io/v1beta1``
        PodMetrics, served by metrics-server): ``[{"name", "containers": [{"name", "usage": {...}}]}]``."""
        contracts.dns1123_label(namespace, "namespace")
        found = self.kube.custom_object_client.list_namespaced_custom_object(
            "metrics.k8s.io", "v1beta1", namespace, "pods", label_selector=contracts.label_selector(match_labels)
        )
        # Selecting is the API server's job; checking again is cheap and guards against one ignoring it.
        return [
            item
            for item in (found or {}).get("items") or []
            if all(((item.get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in match_labels.items())
        ]

    # -- changes -------------------------------------------------------------------------------------------------
    def patch_deployment(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Apply a strategic-merge patch; the result."""
        contracts.dns1123_label(namespace, "namespace")
        contracts.dns1123_subdomain(name, "Deployment name")
        result = self.kube.apps_v1_client.patch_namespaced_deployment(
            name, namespace, patch, _content_type=STRATEGIC_MERGE
        )
        log.info("Patched deployment %s/%s", namespace, name)
        return self._json(result)

    def rollback_deployment(
        self, namespace: str, name: str, *, to_revision: int = 0, annotations: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """``kubectl rollout undo deployment/<name> [--to-revision=N]`` (0: the previous revision).

        Refuses a paused Deployment as kubectl does; does nothing (``rolled_back: False``) when the template already
        matches the revision. Returns ``{rolled_back, revision, from_revision, images, from_images, replica_set}``.
        """
        if to_revision:
            contracts.revision(to_revision)
        deployment = self.read_deployment(namespace, name)
        if (deployment.get("spec") or {}).get("paused"):
            raise InvalidInput(f"Deployment {namespace}/{name} is paused: resume it first (kubectl refuses too)")
        replica_sets = self._replica_sets(namespace, deployment)
        by_revision = {contracts.parse_revision(rs): rs for rs in replica_sets}
        by_revision.pop(None, None)
        current_revision = max(by_revision) if by_revision else None
        wanted = to_revision or contracts.previous_revision(list(by_revision))
        if wanted is None or wanted not in by_revision:
            raise RevisionNotFound(
                f"Deployment {namespace}/{name} has no {'revision ' + str(to_revision) if to_revision else 'previous revision'}"
                f" in its rollout history (revisions: {sorted(by_revision) or 'none'})"
            )
        target = by_revision[wanted]
        template = (deployment.get("spec") or {}).get("template") or {}
        target_template = (target.get("spec") or {}).get("template") or {}
        result = {
            "namespace": namespace,
            "deployment": name,
            "revision": wanted,
            "from_revision": contracts.parse_revision(deployment) or current_revision,
            "images": contracts.images(target_template),
            "from_images": contracts.images(template),
            "replica_set": (target.get("metadata") or {}).get("name"),
        }
        if contracts.template_without_hash(target_template) == contracts.template_without_hash(template):
            log.info("Rollback of %s/%s skipped: already at revision %s's template", namespace, name, wanted)
            return {**result, "rolled_back": False}
        body = contracts.rollback_patch(deployment, target, extra_annotations=dict(annotations or {}))
        self.kube.apps_v1_client.patch_namespaced_deployment(name, namespace, body, _content_type=JSON_PATCH)
        log.info("Rolled back deployment %s/%s to revision %s", namespace, name, wanted)
        return {**result, "rolled_back": True}

    def restart_deployment(
        self, namespace: str, name: str, *, now: datetime, annotations: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """``kubectl rollout restart deployment/<name>``: the pod template's ``restartedAt`` annotation (RFC 3339)."""
        contracts.dns1123_label(namespace, "namespace")
        contracts.dns1123_subdomain(name, "Deployment name")
        restarted_at = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        template_annotations = {RESTARTED_AT: restarted_at, **dict(annotations or {})}
        body = {"spec": {"template": {"metadata": {"annotations": template_annotations}}}}
        self.kube.apps_v1_client.patch_namespaced_deployment(name, namespace, body, _content_type=STRATEGIC_MERGE)
        log.info("Restarted deployment %s/%s", namespace, name)
        return {"namespace": namespace, "deployment": name, "restarted_at": restarted_at}

    def scale_deployment(self, namespace: str, name: str, *, replicas: int) -> dict[str, Any]:
        """``kubectl scale deployment/<name> --replicas=N``: a merge patch of the scale subresource."""
        contracts.dns1123_label(namespace, "namespace")
        contracts.dns1123_subdomain(name, "Deployment name")
        contracts.replicas(replicas)
        from kubernetes.client.exceptions import ApiException

        try:
            response = self.kube.apps_v1_client.patch_namespaced_deployment_scale(
                name, namespace, {"spec": {"replicas": replicas}}, _content_type=MERGE_PATCH, _preload_content=False
            )
        except ApiException as err:
            raise _api_error(err, f"Deployment {name!r}", namespace, DeploymentNotFound) from err
        answer = self._raw(response)
        log.info("Scaled deployment %s/%s to %s", namespace, name, replicas)
        return {
            "namespace": namespace,
            "deployment": name,
            "replicas": (answer.get("spec") or {}).get("replicas", replicas),
        }


class KubernetesDeploymentHook(KubernetesWorkloadHook):
    """One Deployment: its newest pod's log, and a rollout restart with a record of why (order_backlog_check).

    :param kubernetes_conn_id: cncf-kubernetes Connection, used for pod logs and rollout restarts.
    :param namespace: the Deployment's namespace.
    :param deployment: the Deployment.
    :param container: the container whose log to read ("" for the pod's only container).
    """

    hook_name = "Kubernetes Deployment"

    def __init__(
        self,
        *,
        kubernetes_conn_id: str = KubernetesWorkloadHook.default_conn_name,
        namespace: str,
        deployment: str,
        container: str = "",
    ) -> None:
        super().__init__(kubernetes_conn_id=kubernetes_conn_id)
        self.namespace = namespace
        self.deployment = deployment
        self.container = container

    @classmethod
    def from_settings(cls, kubernetes: dict[str, Any]) -> KubernetesDeploymentHook:
        """The hook for the ``kubernetes`` section of the resolved settings (conn_id, namespace, deployment)."""
        return cls(
            kubernetes_conn_id=kubernetes["conn_id"],
            namespace=kubernetes["namespace"],
            deployment=kubernetes["deployment"],
            container=kubernetes.get("container") or "",
        )

    # -- log -------------------------------------------------------------------------------------------------
    def read_pod_log(self, *, max_bytes: int, max_read_bytes: int | None = None) -> tuple[list[str], str]:
        """The last ``max_bytes`` of the newest pod's current container log, as lines, and which pod it was.

        The newest run of the processor is at the end of its log, so the end is what counts. The API's
        ``limitBytes`` returns the *first* bytes of the log (kmock and our emulator once returned the last: an
        emulator is not the contract), so it is not used: the log is streamed and only its last ``max_bytes`` are
        kept (memory stays bounded however long the log is). ``max_read_bytes`` (default 8 x ``max_bytes``) bounds
        the time spent: past it the read stops and the source says the end was not reached.
        """
        pod = self._newest_pod()
        name = pod.metadata.name
        kwargs: dict[str, Any] = {"name": name, "namespace": self.namespace}
        if self.container:
            kwargs["container"] = self.container
        # Raw bytes: the generated client would turn a non-JSON body into the repr of a bytes object.
        response = self.kube.core_v1_client.read_namespaced_pod_log(**kwargs, _preload_content=False)
        read_bound = max_read_bytes or 8 * max_bytes
        try:
            data, cut, complete = tail_of_stream(response.read, max_bytes=max_bytes, max_read_bytes=read_bound)
        finally:
            response.release_conn()
        source = f"pod {self.namespace}/{name}"
        if not complete:
            source += f" (log longer than {read_bound} bytes: its end was not read)"
        lines = data.decode("utf-8", errors="replace").splitlines()
        if cut and lines:
            lines = lines[1:]  # the first line was cut in the middle
        return lines, source

    def _newest_pod(self) -> Any:
        deployment = self.kube.apps_v1_client.read_namespaced_deployment(self.deployment, self.namespace)
        labels = dict(deployment.spec.selector.match_labels or {})
        selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
        pods = self.kube.core_v1_client.list_namespaced_pod(self.namespace, label_selector=selector).items
        # Selecting is the API server's job; checking again is cheap and guards against one ignoring it.
        pods = [
            pod
            for pod in pods
            if all((pod.metadata.labels or {}).get(key) == value for key, value in labels.items())
            and not pod.metadata.deletion_timestamp
        ]
        if not pods:
            raise RuntimeError(f"no pod of deployment {self.namespace}/{self.deployment} ({selector})")
        return max(
            pods,
            key=lambda pod: (pod.metadata.creation_timestamp is not None, pod.metadata.creation_timestamp),
        )

    # -- restart ---------------------------------------------------------------------------------------------
    def kubernetes_marker(self) -> dict[str, Any]:
        """The Deployment's last restart as recorded on its pod template: incident and time (may be empty)."""
        deployment = self.kube.apps_v1_client.read_namespaced_deployment(self.deployment, self.namespace)
        annotations = (deployment.spec.template.metadata.annotations or {}) if deployment.spec.template.metadata else {}
        marker: dict[str, Any] = {}
        if INCIDENT in annotations:
            marker["incident"] = annotations[INCIDENT]
        if RESTARTED_AT in annotations:
            marker["restarted_at"] = annotations[RESTARTED_AT]
        if HISTORY in annotations:
            marker["history"] = annotations[HISTORY]
        return marker

    def rollout_restart(self, *, incident_key: str, now: datetime, history: str = "") -> dict[str, Any]:
        """``kubectl rollout restart``: one patch setting restartedAt, the incident it was for and the recent restarts
        (the circuit breaker's history), so marker and restart are one atomic write."""
        annotations = {RESTARTED_AT: now.isoformat(), INCIDENT: incident_key}
        if history:
            annotations[HISTORY] = history
        patch = {"spec": {"template": {"metadata": {"annotations": annotations}}}}
        self.kube.apps_v1_client.patch_namespaced_deployment(self.deployment, self.namespace, patch)
        log.info("Restarted deployment %s/%s for %s", self.namespace, self.deployment, incident_key)
        return {
            "method": "kubernetes",
            "target": f"{self.namespace}/{self.deployment}",
            "restarted_at": now.isoformat(),
        }


def tail_of_stream(
    read: Any, *, max_bytes: int, max_read_bytes: int, chunk_bytes: int = 1 << 20
) -> tuple[bytes, bool, bool]:
    """The last ``max_bytes`` of what ``read(n)`` returns until it returns nothing, reading at most ``max_read_bytes``.

    Returns the bytes kept, whether the start was cut off, and whether the stream's end was reached.
    """
    kept = bytearray()
    cut = False
    total = 0
    while total < max_read_bytes:
        data = read(min(chunk_bytes, max_read_bytes - total))
        if not data:
            return bytes(kept), cut, True
        total += len(data)
        kept += data
        if len(kept) > max_bytes:
            del kept[: len(kept) - max_bytes]
            cut = True
    return bytes(kept), cut, not read(1)
