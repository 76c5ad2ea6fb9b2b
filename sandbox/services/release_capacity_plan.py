"""Release capacity plan demo (release_capacity_plan): the seed's app on a Kubernetes API emulator, for `make run`.

* A Kubernetes API emulator (kmock) of its own holding the Deployment ``shop/app``: 3 replicas, 1Gi memory
  (request = limit), 500m CPU: the seed's app before the release. Created through the API at every start.
* A stand-in for the Deployment controller: a patched Deployment is marked rolled out, so ``verify_rollout`` sees
  the rollout finish.

Connection ``release_kubernetes``; the Variable ``toilless_release_capacity_plan`` points the DAG at it, saves the
as-built under the sandbox home and switches applying on (it still needs a person's approval). Trigger the DAG with
the seed's Params (sandbox/release_capacity_plan_data.SEED_PARAMS, shown in the banner) to see 3 -> 6 replicas.
"""

from __future__ import annotations

import json
from typing import Any

from sandbox.kubernetes import KubernetesEmulatorServer
from sandbox.release_capacity_plan_data import SEED_PARAMS, RolloutStandIn, create_deployment, deployment_body
from sandbox.service import SandboxContext, Service

NAMESPACE = "shop"
DEPLOYMENT = "app"
CONN_ID = "release_kubernetes"


class ReleaseCapacityPlanService(Service):
    name = "release_capacity_plan"
    order = 50
    description = "The seed's app (3 replicas) on a Kubernetes emulator (release_capacity_plan)"

    def __init__(self) -> None:
        self.k8s: KubernetesEmulatorServer | None = None
        self.rollouts: RolloutStandIn | None = None

    def start(self, ctx: SandboxContext) -> None:
        self.k8s = KubernetesEmulatorServer(port=ctx.port(5063)).start()
        create_deployment(self.k8s.url, deployment_body(NAMESPACE, DEPLOYMENT))
        self.rollouts = RolloutStandIn(self.k8s.url, NAMESPACE, [DEPLOYMENT], interval=1.0).__enter__()
        ctx.published["release_capacity_plan"] = {"kubernetes": self.k8s.url, "namespace": NAMESPACE}

    def stop(self) -> None:
        if self.rollouts is not None:
            self.rollouts.__exit__(None, None, None)
        if self.k8s is not None:
            self.k8s.stop()

    def connections(self, ctx: SandboxContext) -> dict[str, dict[str, Any]]:
        assert self.k8s is not None
        return {CONN_ID: self.k8s.connection()}

    def variables(self, ctx: SandboxContext) -> dict[str, str]:
        override = {
            "kubernetes_conn_id": CONN_ID,
            "allowed_namespaces": [NAMESPACE],
            "namespace": NAMESPACE,
            "deployments": [DEPLOYMENT],
            "as_built_dir": str(ctx.home / "as_built"),
            "apply": {"enabled": True, "verify_timeout_seconds": 120, "verify_poll_seconds": 2},
        }
        return {"toilless_release_capacity_plan": json.dumps(override)}

    def summary(self, ctx: SandboxContext) -> str:
        where = self.k8s.url if self.k8s else "?"
        return (
            f"Deployment {NAMESPACE}/{DEPLOYMENT} (3 replicas, 1Gi) on a Kubernetes emulator at {where}: trigger "
            f"release_capacity_plan with conf {json.dumps(SEED_PARAMS)}"
        )
