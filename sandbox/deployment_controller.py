"""A stand-in for Kubernetes' Deployment controller on the kmock emulator (:mod:`sandbox.kubernetes`).

kmock stores objects; it runs no controllers. This one does what kube-controller-manager does for a Deployment, simply:

* every change of the pod template gets a ReplicaSet (``<deployment>-<hash>``, owned by the Deployment, labelled
  ``pod-template-hash``) with the next ``deployment.kubernetes.io/revision``; a template equal to an old ReplicaSet's
  (a rollback) reuses that ReplicaSet and moves it to the next revision, as the real controller does;
* the Deployment's ``change-cause`` annotation is copied to the new ReplicaSet; the Deployment gets the revision;
* the API server's ``metadata.generation`` bump on a spec change (kmock does not do it) and the status the controller
  writes (``observedGeneration``, ``replicas``, ``updatedReplicas``, ``readyReplicas``, ``availableReplicas``);
* the new ReplicaSet's pods replace the old ones; their status comes from ``pod_status(image)`` (a test or the sandbox
  decides what each image does: a QA image that crash-loops, a good one that is ready).

Writes go straight to the emulator's objects (no HTTP request), so a test's list of the PATCH requests a Deployment
received holds only what the code under test sent.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sandbox.kubernetes import KubernetesEmulatorServer

log = logging.getLogger(__name__)

REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
HASH_LABEL = "pod-template-hash"
DEPLOYMENTS = "apps/v1/deployments"
REPLICA_SETS = "apps/v1/replicasets"
PODS = "v1/pods"

PodStatus = Callable[[str], dict[str, Any]]


def ready_status(image: str) -> dict[str, Any]:
    """A running, ready pod."""
    return running(image)


def running(image: str, *, ready: bool = True, restarts: int = 0) -> dict[str, Any]:
    return {
        "phase": "Running",
        "containerStatuses": [
            {"name": "app", "image": image, "ready": ready, "restartCount": restarts, "state": {"running": {}}}
        ],
    }


def crash_looping(image: str, *, restarts: int = 7, last_reason: str = "Error") -> dict[str, Any]:
    """A container that keeps dying (``last_reason`` e.g. ``OOMKilled``), waiting in CrashLoopBackOff."""
    return {
        "phase": "Running",
        "containerStatuses": [
            {
                "name": "app",
                "image": image,
                "ready": False,
                "restartCount": restarts,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {
                    "terminated": {"reason": last_reason, "exitCode": 137 if last_reason == "OOMKilled" else 1}
                },
            }
        ],
    }


def _stamp(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def template_hash(template: dict[str, Any]) -> str:
    clean = copy.deepcopy(template)
    (clean.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
    return hashlib.sha256(json.dumps(clean, sort_keys=True).encode()).hexdigest()[:10]


def deployment_body(
    namespace: str,
    name: str,
    *,
    image: str,
    replicas: int = 2,
    labels: dict[str, str] | None = None,
    change_cause: str = "",
    cpu_limit: str | None = None,
) -> dict[str, Any]:
    """A Deployment with one container ``app`` running ``image`` (memory limit 512Mi, ``cpu_limit`` if given)."""
    limits = {"memory": "512Mi", **({"cpu": cpu_limit} if cpu_limit else {})}
    labels = labels or {"app": name}
    annotations = {CHANGE_CAUSE: change_cause} if change_cause else {}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{namespace}-{name}",
            "labels": dict(labels),
            "annotations": annotations,
            "generation": 1,
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {"containers": [{"name": "app", "image": image, "resources": {"limits": limits}}]},
            },
        },
        "status": {},
    }


class DeploymentController:
    """``controller.create(...)``, then ``controller.reconcile(ns, name)`` after each change (or ``start()`` to
    reconcile every ``interval`` seconds in a thread)."""

    def __init__(
        self,
        k8s: KubernetesEmulatorServer,
        *,
        pod_status: PodStatus = ready_status,
        pod_log: Callable[[str], str] = lambda image: "",
        previous_log: Callable[[str], str] = lambda image: "",
    ) -> None:
        self.k8s = k8s
        self.pod_status = pod_status
        self.pod_log = pod_log
        self.previous_log = previous_log
        self.managed: set[tuple[str, str]] = set()
        self._seen_spec: dict[tuple[str, str], str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- objects -------------------------------------------------------------------------------------------------
    def _objects(self) -> Any:
        return self.k8s.emulator.objects

    def _exists(self, key: tuple[str, str, str]) -> bool:
        import kmock

        resource, namespace, name = key
        return (kmock.resource(resource), namespace, name) in self._objects() and not self._objects()[key].deleted

    def _get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        def read() -> dict[str, Any] | None:
            key = (resource, namespace, name)
            if not self._exists(key):
                return None
            return json.loads(json.dumps(self._objects()[key].raw))

        return self.k8s._call(read)

    def _put(self, resource: str, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        key = (resource, meta["namespace"], meta["name"])

        def write() -> None:
            if self._exists(key):
                self._replace(key, body)
            else:
                self._objects()[key] = body

        self.k8s._call(write)

    def _replace(self, key: tuple[str, str, str], body: dict[str, Any]) -> None:
        obj = self._objects()[key]
        old = obj.raw
        obj.patch(_replacement(old, body))

    def _list(self, resource: str, namespace: str) -> list[dict[str, Any]]:
        import kmock

        wanted = kmock.resource(resource)

        def collect() -> list[dict[str, Any]]:
            return [
                json.loads(json.dumps(obj.raw))
                for key, obj in list(self._objects().items())
                if key[0] == wanted and key[1] == namespace and not obj.deleted
            ]

        return self.k8s._call(collect)

    def _delete(self, resource: str, namespace: str, name: str) -> None:
        def delete() -> None:
            key = (resource, namespace, name)
            if self._exists(key):
                self._objects()[key].delete()

        self.k8s._call(delete)

    # -- the story -----------------------------------------------------------------------------------------------
    def create(self, body: dict[str, Any], *, created: datetime | None = None) -> None:
        """Add a Deployment and roll it out (revision 1)."""
        meta = body["metadata"]
        self.managed.add((meta["namespace"], meta["name"]))
        self._put(DEPLOYMENTS, copy.deepcopy(body))
        self.reconcile(meta["namespace"], meta["name"], now=created)

    def set_image(self, namespace: str, name: str, image: str, *, change_cause: str = "") -> None:
        """``kubectl set image`` + ``kubectl annotate kubernetes.io/change-cause``: a new template (a deploy)."""
        deployment = self._get(DEPLOYMENTS, namespace, name)
        assert deployment is not None, f"no Deployment {namespace}/{name}"
        containers = deployment["spec"]["template"]["spec"]["containers"]
        containers[0]["image"] = image
        annotations = deployment["metadata"].setdefault("annotations", {})
        if change_cause:
            annotations[CHANGE_CAUSE] = change_cause
        self._put(DEPLOYMENTS, deployment)

    def age_revisions(self, namespace: str, name: str, created: dict[int, datetime]) -> None:
        """Backdate ReplicaSets' creationTimestamp by revision (a rollout that happened hours ago)."""
        for replica_set in self._owned(namespace, name):
            revision = int(replica_set["metadata"]["annotations"][REVISION])
            if revision in created:
                replica_set["metadata"]["creationTimestamp"] = _stamp(created[revision])
                self._put(REPLICA_SETS, replica_set)

    def _owned(self, namespace: str, name: str) -> list[dict[str, Any]]:
        return [
            rs
            for rs in self._list(REPLICA_SETS, namespace)
            if any(ref.get("name") == name for ref in rs["metadata"].get("ownerReferences") or [])
        ]

    def reconcile(self, namespace: str, name: str, *, now: datetime | None = None) -> bool:
        """One pass of the controller; True if anything changed."""
        with self._lock:
            return self._reconcile(namespace, name, now)

    def _reconcile(self, namespace: str, name: str, now: datetime | None) -> bool:
        deployment = self._get(DEPLOYMENTS, namespace, name)
        if deployment is None:
            return False
        key = (namespace, name)
        spec_text = json.dumps(deployment["spec"], sort_keys=True)
        changed = False
        if key in self._seen_spec and self._seen_spec[key] != spec_text:
            deployment["metadata"]["generation"] = int(deployment["metadata"].get("generation") or 1) + 1
            changed = True
        self._seen_spec[key] = spec_text
        template = deployment["spec"]["template"]
        digest = template_hash(template)
        owned = self._owned(namespace, name)
        revisions = [int(rs["metadata"]["annotations"].get(REVISION, "0")) for rs in owned]
        current = next((rs for rs in owned if rs["metadata"]["labels"].get(HASH_LABEL) == digest), None)
        latest = max(revisions, default=0)
        desired = int(deployment["spec"].get("replicas", 1))
        if current is None:
            current = self._new_replica_set(deployment, digest, latest + 1, now)
            changed = True
        elif int(current["metadata"]["annotations"].get(REVISION, "0")) != latest:
            current["metadata"]["annotations"][REVISION] = str(latest + 1)  # a rollback moves it to the top
            changed = True
        revision = current["metadata"]["annotations"][REVISION]
        cause = (deployment["metadata"].get("annotations") or {}).get(CHANGE_CAUSE)
        if cause is not None:
            current["metadata"]["annotations"][CHANGE_CAUSE] = cause
        if (deployment["metadata"].get("annotations") or {}).get(REVISION) != revision:
            deployment["metadata"].setdefault("annotations", {})[REVISION] = revision
            changed = True
        # Old ReplicaSets to 0, the current one to the desired replicas, with its pods.
        for rs in owned:
            if rs["metadata"]["name"] != current["metadata"]["name"] and rs["spec"].get("replicas"):
                rs["spec"]["replicas"] = 0
                rs["status"] = {"replicas": 0, "readyReplicas": 0}
                self._put(REPLICA_SETS, rs)
                changed = True
        ready = self._sync_pods(deployment, current, desired, now)
        current["spec"]["replicas"] = desired
        current["status"] = {"replicas": desired, "readyReplicas": ready, "availableReplicas": ready}
        self._put(REPLICA_SETS, current)
        status = {
            "observedGeneration": deployment["metadata"]["generation"],
            "replicas": desired,
            "updatedReplicas": desired,
            "readyReplicas": ready,
            "availableReplicas": ready,
        }
        if deployment.get("status") != status:
            deployment["status"] = status
            changed = True
        if changed:
            self._put(DEPLOYMENTS, deployment)
        return changed

    def _new_replica_set(
        self, deployment: dict[str, Any], digest: str, revision: int, now: datetime | None
    ) -> dict[str, Any]:
        meta = deployment["metadata"]
        template = copy.deepcopy(deployment["spec"]["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = digest
        annotations = {REVISION: str(revision)}
        cause = (meta.get("annotations") or {}).get(CHANGE_CAUSE)
        if cause:
            annotations[CHANGE_CAUSE] = cause
        return {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{meta['name']}-{digest}",
                "namespace": meta["namespace"],
                "labels": dict(template["metadata"]["labels"]),
                "annotations": annotations,
                "creationTimestamp": _stamp(now),
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": meta["name"],
                        "uid": meta.get("uid", ""),
                        "controller": True,
                    }
                ],
            },
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {**deployment["spec"]["selector"]["matchLabels"], HASH_LABEL: digest}},
                "template": template,
            },
            "status": {"replicas": 0},
        }

    def _sync_pods(
        self, deployment: dict[str, Any], replica_set: dict[str, Any], desired: int, now: datetime | None
    ) -> int:
        namespace = deployment["metadata"]["namespace"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        rs_name = replica_set["metadata"]["name"]
        image = replica_set["spec"]["template"]["spec"]["containers"][0]["image"]
        pods = [
            pod
            for pod in self._list(PODS, namespace)
            if all((pod["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
        ]
        restarted_at = (replica_set["spec"]["template"]["metadata"].get("annotations") or {}).get(
            "kubectl.kubernetes.io/restartedAt", ""
        )
        keep = []
        for pod in pods:
            if pod["metadata"].get("labels", {}).get(HASH_LABEL) == replica_set["metadata"]["labels"][HASH_LABEL]:
                keep.append(pod)
            else:
                self._delete(PODS, namespace, pod["metadata"]["name"])
        for index in range(len(keep), desired):
            name = f"{rs_name}-{hashlib.sha256(f'{rs_name}{index}{restarted_at}'.encode()).hexdigest()[:5]}"
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": dict(replica_set["spec"]["template"]["metadata"]["labels"]),
                    "creationTimestamp": _stamp(now),
                },
                "spec": copy.deepcopy(replica_set["spec"]["template"]["spec"]),
                "status": self.pod_status(image),
            }
            self._put(PODS, pod)
            self.k8s.pod_logs[(namespace, name)] = lambda image=image: self.pod_log(image)
            self.k8s.previous_pod_logs[(namespace, name)] = lambda image=image: self.previous_log(image)
            keep.append(pod)
        for pod in keep[desired:]:
            self._delete(PODS, namespace, pod["metadata"]["name"])
        keep = keep[:desired]
        return sum(1 for pod in keep if all(c.get("ready") for c in pod["status"].get("containerStatuses") or [{}]))

    # -- background ------------------------------------------------------------------------------------------
    def start(self, interval: float = 0.2) -> DeploymentController:
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval):
                for namespace, name in list(self.managed):
                    try:
                        self.reconcile(namespace, name)
                    except Exception:  # the sandbox keeps running; a test sees the state it left
                        log.exception("reconciling %s/%s failed", namespace, name)

        self._thread = threading.Thread(target=loop, name="deployment-controller", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None


def _replacement(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A merge patch that turns ``old`` into ``new`` (None deletes a key)."""
    patch: dict[str, Any] = {}
    for key in old:
        if key not in new:
            patch[key] = None
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(old.get(key), dict):
            sub = _replacement(old[key], value)
            if sub:
                patch[key] = sub
        elif old.get(key) != value or key not in old:
            patch[key] = value
    return patch
