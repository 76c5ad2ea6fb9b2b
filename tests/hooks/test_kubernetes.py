"""KubernetesWorkloadHook against the kmock emulator and the stand-in Deployment controller: the requests it sends are
the ones kubectl sends (``rollout undo``, ``rollout restart``, ``scale``), and bad names never leave the process."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sandbox.deployment_controller import DeploymentController, crash_looping, deployment_body, running
from sandbox.kubernetes import KubernetesEmulatorServer
from toilless.common.kubernetes_contracts import KubernetesContractError
from toilless.hooks.kubernetes import (
    DeploymentNotFound,
    KubernetesWorkloadHook,
    NamespaceNotReadable,
    RevisionNotFound,
)

GOOD = "shop/web:1.4.2"
QA = "shop/web:1.5.0-qa"


def _status(image: str) -> dict[str, Any]:
    return crash_looping(image, last_reason="OOMKilled") if "qa" in image else running(image)


class Cluster:
    def __init__(self, k8s: KubernetesEmulatorServer) -> None:
        self.k8s = k8s
        self.namespace = f"t-{uuid.uuid4().hex[:8]}"
        self.controller = DeploymentController(
            k8s,
            pod_status=_status,
            pod_log=lambda image: "".join(f"{image} line {i}\n" for i in range(50)),
            previous_log=lambda image: f"{image} crashed: java.lang.OutOfMemoryError\n" if "qa" in image else "",
        )
        self.hook = KubernetesWorkloadHook()

    def outage(self, name: str = "web") -> None:
        """Revision 1 runs the good image; revision 2 (the QA build) is current."""
        self.controller.create(
            deployment_body(self.namespace, name, image=GOOD, change_cause="release 1.4.2"),
            created=datetime.now(UTC) - timedelta(days=3),
        )
        self.controller.set_image(self.namespace, name, QA, change_cause="deploy QA build")
        self.controller.reconcile(self.namespace, name)

    def requests(self, method: str, path_end: str = "") -> list[Any]:
        prefix = f"/namespaces/{self.namespace}/"

        def collect() -> list[Any]:
            return [
                request
                for request in self.k8s.emulator
                if str(request.method).upper().endswith(method)
                and prefix in str(request.url.path)
                and str(request.url.path).endswith(path_end)
            ]

        return self.k8s._call(collect)


@pytest.fixture
def cluster(kubernetes_emulator: KubernetesEmulatorServer) -> Cluster:
    return Cluster(kubernetes_emulator)


def test_rollout_history_lists_revisions_with_images_and_change_cause(cluster: Cluster) -> None:
    cluster.outage()
    # Another Deployment whose labels overlap: its ReplicaSets are not this one's history.
    other = deployment_body(cluster.namespace, "web-canary", image="shop/web:canary", labels={"app": "web"})
    cluster.controller.create(other)

    history = cluster.hook.deployment_revisions(cluster.namespace, "web")

    assert [(row["revision"], row["images"], row["change_cause"]) for row in history] == [
        (1, [GOOD], "release 1.4.2"),
        (2, [QA], "deploy QA build"),
    ]
    assert history[1]["replicas"] == 2
    assert all(row["created"] for row in history)


def test_rollback_sends_what_kubectl_rollout_undo_sends(cluster: Cluster) -> None:
    cluster.outage()
    before = cluster.k8s.deployment(cluster.namespace, "web")

    result = cluster.hook.rollback_deployment(
        cluster.namespace, "web", annotations={"toilless.io/rollback-incident": "inc-42"}
    )

    assert result["rolled_back"] is True
    assert (result["revision"], result["images"], result["from_images"]) == (1, [GOOD], [QA])
    (patch,) = cluster.requests("PATCH", "/deployments/web")
    assert patch.headers["Content-Type"] == "application/json-patch+json"
    assert patch.data == [
        {
            "op": "replace",
            "path": "/spec/template",
            "value": {
                "metadata": {"labels": {"app": "web"}},  # no pod-template-hash
                "spec": {"containers": [{"name": "app", "image": GOOD, "resources": {"limits": {"memory": "512Mi"}}}]},
            },
        },
        {
            "op": "replace",
            "path": "/metadata/annotations",
            "value": {
                "deployment.kubernetes.io/revision": before["metadata"]["annotations"][
                    "deployment.kubernetes.io/revision"
                ],
                "kubernetes.io/change-cause": "release 1.4.2",
                "toilless.io/rollback-incident": "inc-42",
            },
        },
    ]
    cluster.controller.reconcile(cluster.namespace, "web")
    status = cluster.hook.rollout_status(cluster.namespace, "web")
    assert status["complete"]
    assert status["images"] == [GOOD]
    assert status["revision"] == 3


def test_rollback_to_a_revision_already_running_sends_nothing(cluster: Cluster) -> None:
    cluster.outage()

    result = cluster.hook.rollback_deployment(cluster.namespace, "web", to_revision=2)

    assert result["rolled_back"] is False
    assert cluster.requests("PATCH", "/deployments/web") == []


@pytest.mark.parametrize(
    ("to_revision", "error"),
    [
        pytest.param(9, RevisionNotFound, id="unknown-revision"),
        pytest.param(-1, KubernetesContractError, id="negative"),
    ],
)
def test_rollback_to_a_bad_revision_changes_nothing(cluster: Cluster, to_revision: int, error: type) -> None:
    cluster.outage()
    with pytest.raises(error):
        cluster.hook.rollback_deployment(cluster.namespace, "web", to_revision=to_revision)
    assert cluster.requests("PATCH") == []


def test_rollback_without_history_is_refused(cluster: Cluster) -> None:
    cluster.controller.create(deployment_body(cluster.namespace, "fresh", image=GOOD))
    with pytest.raises(RevisionNotFound, match="no previous revision"):
        cluster.hook.rollback_deployment(cluster.namespace, "fresh")
    assert cluster.requests("PATCH") == []


def test_restart_sends_what_kubectl_rollout_restart_sends(cluster: Cluster) -> None:
    cluster.outage()
    now = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)

    cluster.hook.restart_deployment(
        cluster.namespace, "web", now=now, annotations={"toilless.io/restart-incident": "i"}
    )

    (patch,) = cluster.requests("PATCH", "/deployments/web")
    assert patch.headers["Content-Type"] == "application/strategic-merge-patch+json"
    assert patch.data == {
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {
                        "kubectl.kubernetes.io/restartedAt": "2031-05-06T07:08:09Z",
                        "toilless.io/restart-incident": "i",
                    }
                }
            }
        }
    }


def test_scale_patches_the_scale_subresource_like_kubectl_scale(cluster: Cluster) -> None:
    cluster.outage()

    result = cluster.hook.scale_deployment(cluster.namespace, "web", replicas=4)

    (patch,) = cluster.requests("PATCH", "/deployments/web/scale")
    assert patch.headers["Content-Type"] == "application/merge-patch+json"
    assert patch.data == {"spec": {"replicas": 4}}
    assert result["replicas"] == 4


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(lambda h, ns: h.scale_deployment(ns, "web", replicas=-2), "replicas", id="negative-replicas"),
        pytest.param(lambda h, ns: h.scale_deployment(ns, "web", replicas=10**9), "replicas", id="huge-replicas"),
        pytest.param(lambda h, ns: h.scale_deployment(ns, "Web", replicas=2), "DNS-1123", id="uppercase-name"),
        pytest.param(lambda h, ns: h.read_deployment("../kube-system", "web"), "namespace", id="path-namespace"),
        pytest.param(
            lambda h, ns: h.restart_deployment(ns, "web/../x", now=datetime.now(UTC)), "DNS-1123", id="slash-name"
        ),
        pytest.param(lambda h, ns: h.pod_log_tail(ns, "web-1", tail_lines=0), "tail_lines", id="zero-tail"),
        pytest.param(lambda h, ns: h.read_service(ns, "1web"), "DNS-1035", id="service-digit-start"),
    ],
)
def test_bad_values_are_refused_before_any_request(cluster: Cluster, call: Any, message: str) -> None:
    with pytest.raises(KubernetesContractError, match=message):
        call(cluster.hook, cluster.namespace)
    assert cluster.requests("PATCH") == []
    assert cluster.requests("GET") == []


def test_pods_health_and_logs_of_a_crash_looping_deployment(cluster: Cluster) -> None:
    cluster.outage()

    pods = cluster.hook.deployment_pods(cluster.namespace, "web")

    assert len(pods) == 2
    assert all(pod["crash_loop"] and pod["oom_killed"] and not pod["ready"] for pod in pods)
    assert pods[0]["restarted_containers"] == ["app"]
    current = cluster.hook.pod_log_tail(cluster.namespace, pods[0]["name"], tail_lines=3)
    previous = cluster.hook.pod_log_tail(cluster.namespace, pods[0]["name"], tail_lines=3, previous=True)
    assert current == [f"{QA} line 47", f"{QA} line 48", f"{QA} line 49"]
    assert previous == [f"{QA} crashed: java.lang.OutOfMemoryError"]


def test_unknown_deployment_is_a_clear_error(cluster: Cluster) -> None:
    with pytest.raises(DeploymentNotFound, match="'nope' does not exist"):
        cluster.hook.read_deployment(cluster.namespace, "nope")


def test_namespace_the_connection_cannot_read(cluster: Cluster) -> None:
    locked = f"locked-{uuid.uuid4().hex[:6]}"

    def forbid() -> None:
        cluster.k8s.emulator["get", re.compile(rf"^/apis/apps/v1/namespaces/{locked}/.*$")] << 403

    cluster.k8s._call(forbid)
    with pytest.raises(NamespaceNotReadable, match="may not read"):
        cluster.hook.read_deployment(locked, "web")
