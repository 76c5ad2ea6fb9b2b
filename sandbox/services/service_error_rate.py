"""Service error rate demo (service_error_rate): a checkout service with one crash-looping pod, its metrics in a real
Prometheus, its Deployment in a Kubernetes emulator.

* A Kubernetes API emulator (kmock, 127.0.0.1:5075) holding ``shop/checkout`` (3 replicas), run by the stand-in
  Deployment controller (:mod:`sandbox.deployment_controller`): a rollout restart creates a new ReplicaSet and new,
  healthy pods. One of the first pods crash-loops (CrashLoopBackOff, 7 restarts).
* The service's ``/metrics`` (127.0.0.1:5076): per pod, request counters by code and a latency histogram, driven by
  the pods in the emulator: a ready pod answers 200 in ~40 ms, a pod that is not ready answers 40% 5xx in ~1.2 s.
* Prometheus (Debian package, 127.0.0.1:5077) scraping it every 2 s (when installed; otherwise the summary says so).

Trigger ``service_error_rate`` (manual): failing (5xx well above 10%), the crash-looping pod is the Deployment's own ->
rollout restart -> the new pods are healthy -> verified through the same PromQL. The dependency is the sandbox's
Redis (``redis_default``).
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sandbox.deployment_controller import PODS, DeploymentController, crash_looping, deployment_body
from sandbox.kubernetes import KubernetesEmulatorServer
from sandbox.ports import HOST, wait_for_port
from sandbox.service import SandboxContext, Service

log = logging.getLogger(__name__)

NAMESPACE = "shop"
DEPLOYMENT = "checkout"
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: Per pod and second: requests; the 5xx share and latency of a ready pod and of one that is not.
RPS = 10.0
HEALTHY = (0.0, 0.04)
BROKEN = (0.4, 1.2)


class DemoMetrics:
    """The checkout service's own /metrics: counters that grow with what each pod in the emulator does."""

    def __init__(self, k8s: KubernetesEmulatorServer, port: int) -> None:
        self.k8s = k8s
        self.values: dict[str, float] = {}
        self.lock = threading.Lock()
        self._stop = threading.Event()
        demo = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                with demo.lock:
                    body = "".join(f"{series} {value}\n" for series, value in demo.values.items()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer((HOST, port), Handler)
        self.server.daemon_threads = True
        self._threads = [
            threading.Thread(target=self.server.serve_forever, daemon=True),
            threading.Thread(target=self._traffic, daemon=True),
        ]

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> DemoMetrics:
        for thread in self._threads:
            thread.start()
        return self

    def _pods(self) -> list[dict[str, Any]]:
        def collect() -> list[dict[str, Any]]:
            import kmock

            wanted = kmock.resource(PODS)
            return [
                json.loads(json.dumps(obj.raw))
                for key, obj in list(self.k8s.emulator.objects.items())
                if key[0] == wanted and key[1] == NAMESPACE and not obj.deleted
            ]

        return self.k8s._call(collect)

    def _traffic(self) -> None:
        tick = 0.5
        while not self._stop.wait(tick):
            try:
                pods = self._pods()
            except Exception:  # the emulator is stopping; the next tick tries again
                log.debug("listing pods failed", exc_info=True)
                continue
            live = set()
            with self.lock:
                for pod in pods:
                    name = pod["metadata"]["name"]
                    live.add(name)
                    statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
                    ready = all(status.get("ready") for status in statuses)
                    self._add(name, *(HEALTHY if ready else BROKEN), tick)
                for key in [key for key in self.values if not any(f'pod="{name}"' in key for name in live)]:
                    del self.values[key]

    def _add(self, pod: str, error_share: float, latency: float, seconds: float) -> None:
        labels = f'namespace="{NAMESPACE}",pod="{pod}"'
        requests = RPS * seconds
        for code, count in (("200", requests * (1 - error_share)), ("503", requests * error_share)):
            key = f'http_requests_total{{{labels},code="{code}"}}'
            self.values[key] = self.values.get(key, 0.0) + count
        for bound in (*BUCKETS, "+Inf"):
            key = f'http_request_duration_seconds_bucket{{{labels},le="{bound}"}}'
            inside = bound == "+Inf" or latency <= float(bound)
            self.values[key] = self.values.get(key, 0.0) + (requests if inside else 0.0)

    def stop(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()


def _own_pods(controller: DeploymentController) -> None:
    """What the ReplicaSet controller does and the stand-in leaves out: each pod's controller reference to its
    ReplicaSet (matched by pod-template-hash), so the SOP can follow Pod -> ReplicaSet -> Deployment."""
    replica_sets = {
        rs["metadata"]["labels"].get("pod-template-hash"): rs["metadata"]["name"]
        for rs in controller._owned(NAMESPACE, DEPLOYMENT)
    }
    for pod in controller._list(PODS, NAMESPACE):
        meta = pod["metadata"]
        owner = replica_sets.get((meta.get("labels") or {}).get("pod-template-hash"))
        if owner and not meta.get("ownerReferences"):
            meta["ownerReferences"] = [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner, "uid": owner, "controller": True}
            ]
            controller._put(PODS, pod)


class ServiceErrorRateService(Service):
    name = "service_error_rate"
    order = 50
    description = (
        "Checkout service with a crash-looping pod: Kubernetes emulator, /metrics, Prometheus (service_error_rate)"
    )

    def __init__(self) -> None:
        self.k8s: KubernetesEmulatorServer | None = None
        self.controller: DeploymentController | None = None
        self.metrics: DemoMetrics | None = None
        self.prometheus: subprocess.Popen[bytes] | None = None
        self.prometheus_port = 0
        self._stop = threading.Event()
        self._owner_thread: threading.Thread | None = None

    def start(self, ctx: SandboxContext) -> None:
        self.k8s = KubernetesEmulatorServer(port=ctx.port(5075)).start()
        self.controller = DeploymentController(self.k8s)
        self.controller.create(deployment_body(NAMESPACE, DEPLOYMENT, image="shop/checkout:2.3.1", replicas=3))
        _own_pods(self.controller)
        first = sorted(pod["metadata"]["name"] for pod in self.controller._list(PODS, NAMESPACE))[0]
        pod = self.controller._get(PODS, NAMESPACE, first)
        assert pod is not None
        pod["status"] = crash_looping("shop/checkout:2.3.1", restarts=7)
        self.controller._put(PODS, pod)
        self.controller.start(interval=0.5)
        self._owner_thread = threading.Thread(target=self._keep_owning, daemon=True)
        self._owner_thread.start()
        self.metrics = DemoMetrics(self.k8s, ctx.port(5076)).start()
        self._start_prometheus(ctx)
        ctx.published["service_error_rate"] = {
            "kubernetes": self.k8s.url,
            "metrics": f"http://{HOST}:{self.metrics.port}/metrics",
            "prometheus": f"http://{HOST}:{self.prometheus_port}" if self.prometheus else None,
        }

    def _keep_owning(self) -> None:
        while not self._stop.wait(0.5):
            try:
                if self.controller is not None:
                    _own_pods(self.controller)
            except Exception:  # the emulator is stopping; the next tick tries again
                log.debug("owning pods failed", exc_info=True)
                continue

    def _start_prometheus(self, ctx: SandboxContext) -> None:
        binary = shutil.which("prometheus")
        if not binary or self.metrics is None:
            return
        work = Path(ctx.home) / "service_error_rate_prometheus"
        work.mkdir(parents=True, exist_ok=True)
        self.prometheus_port = ctx.port(5077)
        config = (
            "global: {scrape_interval: 2s, evaluation_interval: 2s}\n"
            "scrape_configs:\n"
            "  - job_name: checkout\n"
            "    honor_labels: true\n"
            f"    static_configs: [{{targets: ['{HOST}:{self.metrics.port}']}}]\n"
        )
        (work / "prometheus.yml").write_text(config, encoding="utf-8")
        log = (work / "prometheus.log").open("ab")
        self.prometheus = subprocess.Popen(
            [
                binary,
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'data'}",
                f"--web.listen-address={HOST}:{self.prometheus_port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        wait_for_port(self.prometheus_port, timeout=30)

    def stop(self) -> None:
        self._stop.set()
        if self.prometheus is not None:
            self.prometheus.terminate()
            try:
                self.prometheus.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.prometheus.kill()
                self.prometheus.wait(timeout=5)
        if self.metrics is not None:
            self.metrics.stop()
        if self.controller is not None:
            self.controller.stop()
        if self.k8s is not None:
            self.k8s.stop()

    def connections(self, ctx: SandboxContext) -> dict[str, dict[str, Any]]:
        assert self.k8s is not None
        connections = {"service_error_rate_kubernetes": self.k8s.connection()}
        if self.prometheus:
            connections["prometheus_default"] = {"conn_type": "http", "host": f"http://{HOST}:{self.prometheus_port}"}
        return connections

    def variables(self, ctx: SandboxContext) -> dict[str, str]:
        override = {
            "services": {
                f"{NAMESPACE}/{DEPLOYMENT}": {
                    "owner_channel": "developers",
                    "min_replicas": 2,
                    "max_replicas": 5,
                    "dependencies": [{"name": "session cache", "kind": "redis", "conn_id": "redis_default"}],
                }
            },
            "default_service": f"{NAMESPACE}/{DEPLOYMENT}",
            "kubernetes_conn_id": "service_error_rate_kubernetes",
            "queries": {
                "requests": "sum by (pod) (increase(http_requests_total{namespace=$namespace, pod=~$pod_regex}[$window]))",
                "errors": 'sum by (pod) (increase(http_requests_total{namespace=$namespace, pod=~$pod_regex, code=~"5.."}[$window]))',
                "latency_p95_seconds": (
                    "histogram_quantile(0.95, sum by (pod, le) "
                    "(rate(http_request_duration_seconds_bucket{namespace=$namespace, pod=~$pod_regex}[$window])))"
                ),
            },
            # The demo's history starts when the sandbox does: judge the last 10 minutes, verify quickly.
            "prometheus": {"window_minutes": 10},
            "verify": {"settle_seconds": 10, "window_seconds": 20, "timeout_minutes": 5, "poll_seconds": 30},
            "respect_maintenance_window": False,
        }
        return {"toilless_service_error_rate": json.dumps(override)}

    def summary(self, ctx: SandboxContext) -> str:
        where = f"Prometheus on {HOST}:{self.prometheus_port}" if self.prometheus else "no Prometheus installed"
        return (
            f"Checkout service shop/checkout (3 pods, one crash-looping) in a Kubernetes emulator on "
            f"{self.k8s.url if self.k8s else '?'}, metrics scraped by {where}: trigger service_error_rate "
            "(it restarts the Deployment and verifies)"
        )
