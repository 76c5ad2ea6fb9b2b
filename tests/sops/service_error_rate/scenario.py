"""A service the tests control: traffic counters and latency histograms on the shared Prometheus' exporter, and the
Deployment, ReplicaSet and Pods in the Kubernetes emulator.

Each test gets a namespace of its own, so tests share Prometheus and the emulator, not state.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.kubernetes import KubernetesEmulatorServer
from tests.fixtures.prometheus import MetricsExporter

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
DEPLOYMENT = "web"
#: Queries of the tests: the shipped ones' shape, saturation from a gauge the exporter serves.
QUERIES = {
    "requests": "sum by (pod) (increase(http_requests_total{namespace=$namespace, pod=~$pod_regex}[$window]))",
    "errors": 'sum by (pod) (increase(http_requests_total{namespace=$namespace, pod=~$pod_regex, code=~"5.."}[$window]))',
    "latency_p95_seconds": (
        "histogram_quantile(0.95, sum by (pod, le) "
        "(rate(http_request_duration_seconds_bucket{namespace=$namespace, pod=~$pod_regex}[$window])))"
    ),
    "saturation": "max by (pod) (pod_saturation_ratio{namespace=$namespace, pod=~$pod_regex})",
}


@dataclass
class PodTraffic:
    """Per second: requests, the share answered 5xx, the latency of every request, and a saturation gauge."""

    rps: float = 20.0
    error_share: float = 0.0
    latency_seconds: float = 0.03
    saturation: float = 0.2


@dataclass
class Traffic:
    """Adds to the exporter's counters every 0.2 s according to ``profile`` (pod -> PodTraffic)."""

    exporter: MetricsExporter
    namespace: str
    profile: dict[str, PodTraffic] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Traffic:
        self._thread.start()
        return self

    def set(self, profile: dict[str, PodTraffic]) -> None:
        with self.lock:
            for pod in list(self.profile):
                if pod not in profile:
                    self._drop(pod)
            self.profile = dict(profile)

    def _drop(self, pod: str) -> None:
        for key in [key for key in self.exporter.values if f'pod="{pod}"' in key]:
            del self.exporter.values[key]

    def _run(self) -> None:
        tick = 0.2
        while not self._stop.wait(tick):
            with self.lock:
                for pod, traffic in self.profile.items():
                    self._add(pod, traffic, tick)

    def _add(self, pod: str, traffic: PodTraffic, seconds: float) -> None:
        values = self.exporter.values
        labels = f'namespace="{self.namespace}",pod="{pod}"'
        requests = traffic.rps * seconds
        errors = requests * traffic.error_share
        for code, count in (("200", requests - errors), ("500", errors)):
            key = f'http_requests_total{{{labels},code="{code}"}}'
            values[key] = values.get(key, 0.0) + count
        for bound in (*BUCKETS, "+Inf"):
            key = f'http_request_duration_seconds_bucket{{{labels},le="{bound}"}}'
            inside = bound == "+Inf" or traffic.latency_seconds <= float(bound)
            values[key] = values.get(key, 0.0) + (requests if inside else 0.0)
        values[f"pod_saturation_ratio{{{labels}}}"] = traffic.saturation

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        with self.lock:
            for pod in list(self.profile):
                self._drop(pod)


def new_namespace() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def pod_name(replica_set: str, index: int) -> str:
    return f"{replica_set}-p{index:04d}"


class Cluster:
    """The Deployment ``web`` in ``namespace``: one ReplicaSet owned by it, pods owned by that."""

    def __init__(self, k8s: KubernetesEmulatorServer, namespace: str, *, replicas: int = 2) -> None:
        self.k8s = k8s
        self.namespace = namespace
        self.replica_set = f"{DEPLOYMENT}-5d8f7c9b4"
        labels = {"app": DEPLOYMENT}
        self.labels = labels
        deployment = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": DEPLOYMENT,
                "namespace": namespace,
                "labels": labels,
                "generation": 1,
                "uid": str(uuid.uuid4()),
                "annotations": {},
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels, "annotations": {}},
                    "spec": {"containers": [{"name": "web", "image": "web:1.4.2"}]},
                },
            },
            "status": {"replicas": replicas, "readyReplicas": replicas},
        }
        replica_set = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": self.replica_set,
                "namespace": namespace,
                "labels": labels,
                "annotations": {"deployment.kubernetes.io/revision": "1"},
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": DEPLOYMENT,
                        "uid": deployment["metadata"]["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": deployment["spec"]["template"],
            },
        }
        self._put("apps/v1/deployments", DEPLOYMENT, deployment)
        self._put("apps/v1/replicasets", self.replica_set, replica_set)

    def _put(self, resource: str, name: str, body: dict[str, Any]) -> None:
        self.k8s._call(lambda: self.k8s.emulator.objects.__setitem__((resource, self.namespace, name), body))

    def add_pod(
        self, name: str, *, ready: bool = True, waiting: str = "", restarts: int = 0, owner: str | None = None
    ) -> None:
        state: dict[str, Any] = (
            {"waiting": {"reason": waiting}} if waiting else {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
        )
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": self.labels,
                "creationTimestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "name": owner or self.replica_set,
                        "uid": "u",
                        "controller": True,
                    }
                ],
            },
            "spec": {"containers": [{"name": "web", "image": "web:1.4.2"}]},
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                "containerStatuses": [
                    {
                        "name": "web",
                        "ready": ready,
                        "restartCount": restarts,
                        "state": state,
                        "image": "web:1.4.2",
                        "imageID": "",
                        "lastState": {},
                    }
                ],
            },
        }
        self._put("v1/pods", name, body)

    def deployment(self) -> dict[str, Any]:
        return self.k8s.deployment(self.namespace, DEPLOYMENT)

    def patches(self) -> list[Any]:
        return self.k8s.deployment_patches(self.namespace, DEPLOYMENT)

    def scale_patches(self) -> list[Any]:
        path = f"/apis/apps/v1/namespaces/{self.namespace}/deployments/{DEPLOYMENT}/scale"

        def collect() -> list[Any]:
            return [
                request.data
                for request in self.k8s.emulator
                if str(request.method).upper().endswith("PATCH") and str(request.url.path) == path
            ]

        return self.k8s._call(collect)

    def restarts(self) -> list[Any]:
        return [patch for patch in self.patches() if "kubectl.kubernetes.io/restartedAt" in str(patch)]


class Controller:
    """Plays the Deployment controller after a restart: when a restart patch arrives, the old pods go and new,
    healthy pods serve clean traffic."""

    def __init__(self, cluster: Cluster, traffic: Traffic, healthy: dict[str, PodTraffic]) -> None:
        self.cluster = cluster
        self.traffic = traffic
        self.healthy = healthy
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Controller:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            if self.cluster.restarts() or self.cluster.scale_patches():
                self.traffic.set(self.healthy)
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def wait_for_series(prometheus: Any, namespace: str, pods: int, timeout: float = 90.0) -> None:
    """Until Prometheus has at least 3 scrapes of every pod's counters (rate() and increase() need 2)."""
    prometheus.wait_for_scrapes(
        f'http_requests_total{{namespace="{namespace}",code="200"}}', samples=3, timeout=timeout
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (
            len(prometheus.instant(f'count by (pod) (http_requests_total{{namespace="{namespace}",code="200"}})'))
            >= pods
        ):
            return
        time.sleep(0.2)
    raise TimeoutError(f"fewer than {pods} pods' series in Prometheus")


def wait_for_profile(prometheus: Any, namespace: str, profile: dict[str, PodTraffic], timeout: float = 90.0) -> None:
    """Until Prometheus' latest scrape shows exactly ``profile``'s pods with their saturation: the verdict reads that
    gauge at the moment it runs, and a run started before the next scrape would judge the previous profile."""
    wanted = {pod: traffic.saturation for pod, traffic in profile.items()}
    deadline = time.monotonic() + timeout
    seen: dict[str, float] = {}
    while time.monotonic() < deadline:
        rows = prometheus.instant(f'max by (pod) (pod_saturation_ratio{{namespace="{namespace}"}})')
        seen = {row["metric"]["pod"]: float(row["value"][1]) for row in rows}
        if seen == wanted:
            return
        time.sleep(0.2)
    raise TimeoutError(f"Prometheus shows {seen}, not the profile served {wanted}")
