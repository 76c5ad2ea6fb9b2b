"""A Kubernetes API emulator (kmock's KubernetesEmulator) on loopback, usable from synchronous code.

kmock is asyncio-based; this runs its emulator and HTTP server on an event loop in a background thread, so
the kubernetes client (through the cncf-kubernetes provider's KubernetesHook) and synchronous tests can use
it. Objects are kept in memory: reads, listings and patches behave like a (very simple) API server. Pod logs
are served from a callable per pod, e.g. reading a file a test or the sandbox writes.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sandbox.ports import HOST, free_port

_POD_LOG = re.compile(r"^/api/v1/namespaces/(?P<namespace>[^/]+)/pods/(?P<name>[^/]+)/log$")


class KubernetesEmulatorServer:
    """``with KubernetesEmulatorServer() as k8s: k8s.add_deployment(...)``; ``k8s.connection()`` for Airflow."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.emulator: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.pod_logs: dict[tuple[str, str], Callable[[], str]] = {}
        #: The log of a pod's previous (restarted) container, served for ``previous=true``.
        self.previous_pod_logs: dict[tuple[str, str], Callable[[], str]] = {}

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def start(self) -> KubernetesEmulatorServer:
        self._thread = threading.Thread(target=self._run, name="kubernetes-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise TimeoutError("Kubernetes emulator did not start within 30 s")
        if self._error is not None:
            raise RuntimeError(f"Kubernetes emulator failed to start: {self._error}") from self._error
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as err:  # reported to start() through _error
            self._error = err
            self._ready.set()

    async def _serve(self) -> None:
        import kmock

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with kmock.KubernetesEmulator() as emulator, kmock.Server(emulator, host=HOST, port=self.port):
            emulator.resources["apps/v1/deployments"] = {}
            emulator.resources["apps/v1/replicasets"] = {}
            emulator.resources["v1/pods"] = {}
            emulator["get", _POD_LOG] << self._serve_pod_log
            self.emulator = emulator
            self._ready.set()
            await self._stop.wait()

    def _serve_pod_log(self, request: Any) -> bytes:
        match = _POD_LOG.match(str(request.url.path))
        assert match is not None  # the reaction only fires on matching paths
        logs = self.pod_logs
        if str(request.params.get("previous", "")).lower() in ("true", "1"):
            logs = self.previous_pod_logs
        source = logs.get((match.group("namespace"), match.group("name")))
        if source is None:
            return b""
        data = source().encode()
        # The real API's semantics (core/v1 PodLogOptions): tailLines keeps the last N lines, then limitBytes keeps
        # the first N bytes of what is left. kmock alone would ignore both.
        tail = request.params.get("tailLines")
        if tail is not None:
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[len(lines) - int(tail) :]) if int(tail) else b""
        limit = request.params.get("limitBytes")
        return data[: int(limit)] if limit else data

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def __enter__(self) -> KubernetesEmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def kubeconfig(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "sandbox", "cluster": {"server": self.url}}],
            "users": [{"name": "sandbox", "user": {"token": "kmock-not-a-real-token"}}],
            "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox", "user": "sandbox"}}],
            "current-context": "sandbox",
        }

    def connection(self) -> dict[str, Any]:
        """Airflow ``kubernetes`` Connection (JSON form) pointing at this emulator."""
        return {"conn_type": "kubernetes", "extra": {"kube_config": json.dumps(self.kubeconfig())}}

    # -- objects -------------------------------------------------------------------------------------------------
    def _call(self, function: Callable[[], Any]) -> Any:
        assert self._loop is not None, "emulator not started"

        async def call() -> Any:
            return function()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(10)

    def add_deployment(
        self, namespace: str, name: str, labels: dict[str, str], *, annotations: dict[str, str] | None = None
    ) -> None:
        body = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": labels, "generation": 1},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels, "annotations": dict(annotations or {})},
                    "spec": {"containers": [{"name": name, "image": f"{name}:sandbox"}]},
                },
            },
            "status": {"replicas": 1, "readyReplicas": 1},
        }
        self._call(lambda: self.emulator.objects.__setitem__(("apps/v1/deployments", namespace, name), body))

    def add_pod(
        self, namespace: str, name: str, labels: dict[str, str], log: Callable[[], str], created: datetime | None = None
    ) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": labels,
                "creationTimestamp": (created or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            "spec": {"containers": [{"name": "processor", "image": "order-processor:sandbox"}]},
            "status": {"phase": "Running"},
        }
        self.pod_logs[(namespace, name)] = log
        self._call(lambda: self.emulator.objects.__setitem__(("v1/pods", namespace, name), body))

    def deployment(self, namespace: str, name: str) -> dict[str, Any]:
        """The Deployment as the emulator holds it now (after patches)."""
        return self._call(
            lambda: json.loads(json.dumps(self.emulator.objects["apps/v1/deployments", namespace, name].raw))
        )

    def deployment_patches(self, namespace: str, name: str) -> list[Any]:
        """Bodies of every PATCH the Deployment received, oldest first."""
        path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"

        def collect() -> list[Any]:
            return [
                request.data
                for request in self.emulator
                if str(request.method).upper().endswith("PATCH") and str(request.url.path) == path
            ]

        return self._call(collect)
