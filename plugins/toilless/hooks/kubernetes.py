"""A Kubernetes Deployment: its newest pod's log, and a rollout restart that records why it was made.

Used by order_backlog_check for the order processor. Kubernetes goes through the cncf-kubernetes provider's
KubernetesHook (a kubeconfig in the Connection's ``kube_config`` extra, or in-cluster). A restart is
``kubectl rollout restart``: a patch of the pod template's ``kubectl.kubernetes.io/restartedAt`` annotation. The same patch records the incident it was for in
``toilless.io/restart-incident``, so the marker and the restart are one atomic write: a retry that lost the
response still sees that the restart happened.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

log = logging.getLogger(__name__)

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
INCIDENT = "toilless.io/restart-incident"
#: Recent restarts by Toilless (epoch seconds), for the action gate's circuit breaker.
HISTORY = "toilless.io/restart-history"


class KubernetesDeploymentHook(BaseHook):
    """Reads a Deployment's newest pod log, and restarts the Deployment with a record of why.

    :param kubernetes_conn_id: cncf-kubernetes Connection, used for pod logs and rollout restarts.
    :param namespace: the Deployment's namespace.
    :param deployment: the Deployment.
    :param container: the container whose log to read ("" for the pod's only container).
    """

    conn_name_attr = "kubernetes_conn_id"
    default_conn_name = "kubernetes_default"
    hook_name = "Kubernetes Deployment"

    def __init__(
        self,
        *,
        kubernetes_conn_id: str = default_conn_name,
        namespace: str,
        deployment: str,
        container: str = "",
    ) -> None:
        super().__init__()
        self.kubernetes_conn_id = kubernetes_conn_id
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

    @cached_property
    def kube(self) -> KubernetesHook:
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

        return KubernetesHook(conn_id=self.kubernetes_conn_id)

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
