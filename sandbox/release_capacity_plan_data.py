"""The seed's release for release_capacity_plan, on the Kubernetes API emulator: Deployments created through the API
(as on a cluster) and a stand-in for the Deployment controller that marks a patched Deployment rolled out.

The seed (SOPS.md, "Release capacity planning"): 3 app replicas serve 1300 concurrent users at 500 each, containers use
85% of their memory, the release adds 25% memory per user and doubles the users (2600 concurrent).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import requests

#: The seed's figures as the DAG's Params (conf), with a new order processor needing about 1 GiB and twice the app's CPU.
SEED_PARAMS: dict[str, Any] = {
    "release": "2026.12.1",
    "current_concurrent_users": 1300,
    "expected_concurrent_users": 2600,
    "users_per_replica": 500,
    "memory_utilisation_pct": 85,
    "memory_growth_per_user_pct": 25,
    "new_components": [
        {"name": "order-processor", "memory": "1Gi", "cpu_factor_of_app": 2, "image": "shop/order-processor:1.0"}
    ],
    "stakeholders": ["Shop product owner", "SRE on call"],
    "code_changes": [
        {"kind": "feature", "ticket": "SHOP-101", "summary": "New order processor"},
        {"kind": "bugfix", "ticket": "SHOP-117", "summary": "Cart total rounding"},
    ],
    "design_notes": ["Orders are processed asynchronously by the new order processor"],
    "tests": ["Load test: 2600 concurrent users for 30 minutes"],
    "deployment_notes": ["Apply the capacity patch before switching traffic"],
}


def deployment_body(
    namespace: str,
    name: str,
    *,
    replicas: int = 3,
    memory: str = "1Gi",
    cpu: str = "500m",
    cpu_limit: str | None = "1",
) -> dict[str, Any]:
    """An app Deployment with one container (memory request = limit), rolled out."""
    labels = {"app.kubernetes.io/name": name}
    limits: dict[str, str] = {"memory": memory}
    if cpu_limit:
        limits["cpu"] = cpu_limit
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels, "generation": 1},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": name,
                            "image": f"shop/{name}:2026.11",
                            "ports": [{"containerPort": 8080}],
                            "resources": {"requests": {"memory": memory, "cpu": cpu}, "limits": limits},
                        }
                    ]
                },
            },
        },
        "status": _rolled_out(replicas, 1),
    }


def _rolled_out(replicas: int, generation: int) -> dict[str, Any]:
    return {
        "observedGeneration": generation,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
    }


def _deployments(url: str, namespace: str) -> str:
    return f"{url}/apis/apps/v1/namespaces/{namespace}/deployments"


def create_deployment(url: str, body: dict[str, Any]) -> None:
    """Create (or replace) a Deployment through the API, as kubectl apply would."""
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    requests.delete(f"{_deployments(url, namespace)}/{name}", timeout=10)
    response = requests.post(_deployments(url, namespace), json=body, timeout=10)
    response.raise_for_status()


def read_deployment(url: str, namespace: str, name: str) -> dict[str, Any]:
    response = requests.get(f"{_deployments(url, namespace)}/{name}", timeout=10)
    response.raise_for_status()
    return response.json()


def finish_rollout(url: str, namespace: str, name: str) -> bool:
    """What the Deployment controller does after a change: status at the spec's replicas. True if it changed."""
    deployment = read_deployment(url, namespace, name)
    replicas = int(deployment["spec"].get("replicas", 1))
    generation = int(deployment["metadata"].get("generation") or 1)
    status = deployment.get("status") or {}
    if status.get("availableReplicas") == replicas and status.get("updatedReplicas") == replicas:
        return False
    response = requests.patch(
        f"{_deployments(url, namespace)}/{name}/status",
        data=json.dumps({"status": _rolled_out(replicas, generation)}),
        headers={"Content-Type": "application/merge-patch+json"},
        timeout=10,
    )
    response.raise_for_status()
    return True


class RolloutStandIn:
    """``with RolloutStandIn(url, namespace, names):`` rolls out any of the Deployments whose status lags its spec."""

    def __init__(self, url: str, namespace: str, names: list[str], *, interval: float = 0.2) -> None:
        self.url, self.namespace, self.names, self.interval = url, namespace, list(names), interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rollout-stand-in", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for name in self.names:
                try:
                    finish_rollout(self.url, self.namespace, name)
                except requests.RequestException:
                    continue  # the emulator stopping under us: the next round or the end

    def __enter__(self) -> RolloutStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
