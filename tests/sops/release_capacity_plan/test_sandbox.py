"""The sandbox service gives `make run` the seed's app to plan for, and rolls out what the DAG patches."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from sandbox.release_capacity_plan_data import read_deployment
from sandbox.service import SandboxContext
from sandbox.services.release_capacity_plan import CONN_ID, ReleaseCapacityPlanService

pytestmark = pytest.mark.integration


def test_sandbox_seeds_the_seed_s_app_and_rolls_out_patches(tmp_path: Path) -> None:
    import requests

    service = ReleaseCapacityPlanService()
    ctx = SandboxContext(home=tmp_path, preferred_ports=False)
    service.start(ctx)
    try:
        url = ctx.published["release_capacity_plan"]["kubernetes"]
        app = read_deployment(url, "shop", "app")
        assert app["spec"]["replicas"] == 3
        assert app["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"] == "1Gi"
        assert CONN_ID in service.connections(ctx)
        override = json.loads(service.variables(ctx)["toilless_release_capacity_plan"])
        assert override["kubernetes_conn_id"] == CONN_ID

        requests.patch(
            f"{url}/apis/apps/v1/namespaces/shop/deployments/app",
            data=json.dumps({"spec": {"replicas": 6}}),
            headers={"Content-Type": "application/merge-patch+json"},
            timeout=10,
        )
        deadline = time.monotonic() + 10
        while read_deployment(url, "shop", "app")["status"].get("availableReplicas") != 6:
            assert time.monotonic() < deadline, "the stand-in controller never rolled out the patch"
            time.sleep(0.2)
    finally:
        service.stop()
