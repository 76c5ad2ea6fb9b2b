"""App down demo (app_down): the outage story end to end, for `make run`.

* A Kubernetes API emulator (kmock) on 127.0.0.1:5070 holding the `shop/web` Deployment, and a stand-in for the
  Deployment controller (``sandbox.deployment_controller``) that makes a new ReplicaSet revision on every template
  change and rolls it out. Revision 1 (``shop/web:1.4.2``, "release 1.4.2") runs, rolled out three days ago.
* The demo web app on 127.0.0.1:5071 (``sandbox.app_down_data.DemoWebApp``): ``/health`` answers 200 while a release
  image runs and 500 while the QA build runs; ``/internal/health`` (the host) always answers.
* Deploy the QA build by mistake (the outage), then fire the alert (or trigger app_down by hand)::

      curl -s -X PATCH -H 'Content-Type: application/strategic-merge-patch+json' \\
        http://127.0.0.1:5070/apis/apps/v1/namespaces/shop/deployments/web \\
        -d '{"metadata":{"annotations":{"kubernetes.io/change-cause":"deploy QA build"}},"spec":{"template":{"spec":{"containers":[{"name":"app","image":"shop/web:2.0.0-qa"}]}}}}'

  The run verifies (public URL 500, host up), escalates to every role, reads the history, rolls back to revision 1,
  sees the app answer again and posts the timeline (Slack sink).

Connection ``app_down_kubernetes``; the Variable ``toilless_app_down`` points the SOP at both.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.app_down_data import DEPLOYMENT, GOOD_IMAGE, NAMESPACE, DemoWebApp
from sandbox.deployment_controller import DeploymentController, deployment_body
from sandbox.kubernetes import KubernetesEmulatorServer
from sandbox.service import SandboxContext, Service

CONN_ID = "app_down_kubernetes"


def override(app_url: str) -> dict[str, Any]:
    """The Variable the sandbox sets: the demo service, quick probes and verification."""
    return {
        "services": {
            "web": {
                "kubernetes_conn_id": CONN_ID,
                "namespace": NAMESPACE,
                "deployment": DEPLOYMENT,
                "endpoints": {"public": [f"{app_url}/health"], "internal": [f"{app_url}/internal/health"]},
            }
        },
        "probe": {"attempts": 3, "interval_seconds": 1, "timeout_seconds": 3},
        "verify": {"timeout_minutes": 5, "poll_seconds": 2, "sustain_seconds": 10},
        "respect_maintenance_window": False,
    }


class AppDownService(Service):
    name = "app_down"
    order = 50
    description = "Outage demo: a web app on a Kubernetes emulator with a rollout history (app_down)"

    def __init__(self) -> None:
        self.k8s: KubernetesEmulatorServer | None = None
        self.controller: DeploymentController | None = None
        self.app: DemoWebApp | None = None

    def start(self, ctx: SandboxContext) -> None:
        self.k8s = KubernetesEmulatorServer(port=ctx.port(5070)).start()
        self.controller = DeploymentController(
            self.k8s,
            pod_log=lambda image: (
                f"GET /health 500\nERROR {image}: /app/scripts/start.sh not found\n"
                if image.endswith("-qa")
                else "GET /health 200\n"
            ),
        )
        self.controller.create(
            deployment_body(NAMESPACE, DEPLOYMENT, image=GOOD_IMAGE, change_cause="release 1.4.2"),
            created=datetime.now(UTC) - timedelta(days=3),
        )
        self.controller.start(interval=0.5)
        self.app = DemoWebApp(self.controller, port=ctx.port(5071)).start()
        ctx.published["app_down"] = {"kubernetes": self.k8s.url, "app": self.app.url}

    def stop(self) -> None:
        if self.app is not None:
            self.app.stop()
        if self.controller is not None:
            self.controller.stop()
        if self.k8s is not None:
            self.k8s.stop()

    def connections(self, ctx: SandboxContext) -> dict[str, dict[str, Any]]:
        assert self.k8s is not None
        return {CONN_ID: self.k8s.connection()}

    def variables(self, ctx: SandboxContext) -> dict[str, str]:
        assert self.app is not None
        return {"toilless_app_down": json.dumps(override(self.app.url))}

    def summary(self, ctx: SandboxContext) -> str:
        assert self.app is not None
        assert self.k8s is not None
        return f"{self.description}: app {self.app.url}/health, Kubernetes {self.k8s.url}; deploy the QA build (docs/app_down.md), then trigger app_down"
