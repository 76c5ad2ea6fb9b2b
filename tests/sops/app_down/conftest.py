"""The app_down world for a test: a Deployment on the session's Kubernetes emulator with a stand-in controller, the
demo web app whose answers follow its image, and the SOP's settings pointing at both (a namespace of its own)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sandbox.app_down_data import GOOD_IMAGE, QA_IMAGE, DemoWebApp
from sandbox.deployment_controller import (
    DEPLOYMENTS,
    DeploymentController,
    crash_looping,
    deployment_body,
    running,
)
from sandbox.kubernetes import KubernetesEmulatorServer

DAG_ID = "app_down"
EVERY_DAY = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class World:
    def __init__(self, k8s: KubernetesEmulatorServer, configure: Callable[..., None]) -> None:
        self.k8s = k8s
        self.namespace = f"shop-{uuid.uuid4().hex[:8]}"
        self.deployment = "web"
        self.crashing = False  # pods of any image crash-loop until a restart
        self.controller = DeploymentController(
            k8s,
            pod_status=self._pod_status,
            pod_log=lambda image: "".join(
                f"GET /health 500 {image}\nERROR scripts missing in {image}\n" for _ in range(3)
            ),
            previous_log=lambda image: f"FATAL {image} exited: OutOfMemoryError\n",
        )
        self.app = DemoWebApp(self.controller, namespace=self.namespace, deployment=self.deployment).start()
        self._configure = configure
        self.configure()

    def _pod_status(self, image: str) -> dict[str, Any]:
        if self.crashing and not self._restarted():
            return crash_looping(image, last_reason="OOMKilled")
        return running(image)

    def _restarted(self) -> bool:
        deployment = self.controller._get(DEPLOYMENTS, self.namespace, self.deployment) or {}
        annotations = deployment.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations") or {}
        return "kubectl.kubernetes.io/restartedAt" in annotations

    # -- the stories -------------------------------------------------------------------------------------------
    def running_release(self, *, days_ago: float = 3, cpu_limit: str | None = None) -> None:
        self.controller.create(
            deployment_body(
                self.namespace, self.deployment, image=GOOD_IMAGE, change_cause="release 1.4.2", cpu_limit=cpu_limit
            ),
            created=datetime.now(UTC) - timedelta(days=days_ago),
        )

    def deploy_qa_build(self, *, minutes_ago: float = 10) -> None:
        self.controller.set_image(self.namespace, self.deployment, QA_IMAGE, change_cause="deploy QA build")
        self.controller.reconcile(
            self.namespace, self.deployment, now=datetime.now(UTC) - timedelta(minutes=minutes_ago)
        )

    def restart_by_hand(self, *, minutes_ago: float = 5) -> None:
        """What the team did in the outage: kubectl rollout restart (a new revision with the same image)."""
        at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
        deployment = self.controller._get(DEPLOYMENTS, self.namespace, self.deployment)
        assert deployment is not None
        deployment["spec"]["template"]["metadata"].setdefault("annotations", {})[
            "kubectl.kubernetes.io/restartedAt"
        ] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        self.controller._put(DEPLOYMENTS, deployment)
        self.controller.reconcile(self.namespace, self.deployment, now=at)

    def pod_metrics(self, cpu: str) -> None:
        """PodMetrics (metrics-server) for each pod of the Deployment: every container at ``cpu``."""
        import requests

        url = f"{self.k8s.url}/apis/metrics.k8s.io/v1beta1/namespaces/{self.namespace}/pods"
        for pod in self.k8s._call(
            lambda: [
                dict(o.raw)
                for k, o in self.k8s.emulator.objects.items()
                if k[1] == self.namespace and not o.deleted and o.raw.get("kind") == "Pod"
            ]
        ):
            metrics = {
                "apiVersion": "metrics.k8s.io/v1beta1",
                "kind": "PodMetrics",
                "metadata": {
                    "name": pod["metadata"]["name"],
                    "namespace": self.namespace,
                    "labels": pod["metadata"]["labels"],
                },
                "containers": [{"name": "app", "usage": {"cpu": cpu, "memory": "300Mi"}}],
            }
            requests.post(url, json=metrics, timeout=10).raise_for_status()

    def image(self) -> str:
        return self.k8s.deployment(self.namespace, self.deployment)["spec"]["template"]["spec"]["containers"][0][
            "image"
        ]

    def patches(self, suffix: str = "") -> list[Any]:
        path = f"/apis/apps/v1/namespaces/{self.namespace}/deployments/{self.deployment}{suffix}"

        def collect() -> list[Any]:
            return [r for r in self.k8s.emulator if str(r.method).upper().endswith("PATCH") and str(r.url.path) == path]

        return self.k8s._call(collect)

    def action_patches(self) -> list[Any]:
        """PATCHes that change the workload (not the marker-only metadata patch)."""
        return [
            p for p in self.patches() if not (isinstance(p.data, dict) and set(p.data) == {"metadata"})
        ] + self.patches("/scale")

    def configure(self, **overrides: Any) -> dict[str, Any]:
        now = datetime.now(UTC)
        settings: dict[str, Any] = {
            "report_channel": "ops",
            "services": {
                "web": {
                    "namespace": self.namespace,
                    "deployment": self.deployment,
                    "endpoints": {
                        "public": [f"{self.app.url}/health"],
                        "internal": [f"{self.app.url}/internal/health"],
                    },
                }
            },
            "probe": {"attempts": 2, "interval_seconds": 0.1, "timeout_seconds": 3},
            "verify": {"timeout_minutes": 0.5, "poll_seconds": 0.2, "sustain_seconds": 0.6},
            # Never today: the tests run at any hour of any day (the maintenance-window test sets its own).
            "maintenance_window": {
                "days": [EVERY_DAY[(now.weekday() + 3) % 7]],
                "start": "02:00",
                "end": "04:00",
                "timezone": "UTC",
            },
        }
        settings.update(overrides)
        self._configure(json.loads(json.dumps(settings)))
        return settings

    def close(self) -> None:
        self.controller.stop()
        self.app.stop()


@pytest.fixture
def world(
    kubernetes_emulator: KubernetesEmulatorServer, set_variable: Callable[[str, Any], None], slack_sink: Any
) -> Iterator[World]:
    env = World(kubernetes_emulator, lambda settings: set_variable(f"toilless_{DAG_ID}", settings))
    try:
        yield env
    finally:
        env.close()
