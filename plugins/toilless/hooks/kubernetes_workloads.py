"""Kubernetes Deployments as plain JSON: read one, strategic-merge patch one, read its rollout status.

Through the cncf-kubernetes provider's KubernetesHook (a kubeconfig in the Connection's ``kube_config`` extra, or
in-cluster). No SOP logic here: what to patch is decided by the caller. Objects come back as the API's own JSON
(camelCase keys), so pure code can read them without the kubernetes client's models.
"""

from __future__ import annotations

import logging
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from toilless.common.errors import InvalidInput

if TYPE_CHECKING:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

log = logging.getLogger(__name__)


class DeploymentNotFound(InvalidInput):
    """The Deployment named does not exist (Kubernetes answered 404): the same on every try, never retried."""


class KubernetesWorkloadHook(BaseHook):
    """Reads and patches Deployments.

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

    def read_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        """The Deployment as the API returns it; :class:`DeploymentNotFound` when it does not exist."""
        from kubernetes.client.exceptions import ApiException

        try:
            deployment = self.kube.apps_v1_client.read_namespaced_deployment(name, namespace)
        except ApiException as err:
            if err.status == 404:
                raise DeploymentNotFound(
                    f"Deployment {name!r} does not exist in namespace {namespace!r} (Kubernetes answered 404): "
                    "check the names in the Params"
                ) from err
            raise
        return self._json(deployment)

    def patch_deployment(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Apply a strategic-merge patch (the client's default content type for a dict body); the result."""
        result = self.kube.apps_v1_client.patch_namespaced_deployment(name, namespace, patch)
        log.info("Patched deployment %s/%s", namespace, name)
        return self._json(result)

    def pod_metrics(self, namespace: str, match_labels: dict[str, str]) -> list[dict[str, Any]]:
        """Current usage of the pods matching ``match_labels`` from the metrics API (``metrics.k8s.io/v1beta1``
        PodMetrics, served by metrics-server): ``[{"name", "containers": [{"name", "usage": {...}}]}]``."""
        selector = ",".join(f"{key}={value}" for key, value in sorted(match_labels.items()))
        found = self.kube.custom_object_client.list_namespaced_custom_object(
            "metrics.k8s.io", "v1beta1", namespace, "pods", label_selector=selector
        )
        # Selecting is the API server's job; checking again is cheap and guards against one ignoring it.
        return [
            item
            for item in (found or {}).get("items") or []
            if all(((item.get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in match_labels.items())
        ]
