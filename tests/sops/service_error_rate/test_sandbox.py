"""The sandbox's checkout service (what `make run` gives service_error_rate): its Connections and Variable lead the
DAG's own steps to a failing service whose crash-looping pod belongs to the Deployment, so the decision is a restart;
after the restart the new pods are healthy."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from sandbox.service import SandboxContext
from sandbox.services.service_error_rate import DEPLOYMENT, NAMESPACE, ServiceErrorRateService

pytestmark = pytest.mark.integration


def test_sandbox_service_feeds_the_dag_steps_to_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from toilless.common.config import deep_merge, read_defaults
    from toilless.sops.service_error_rate import steps
    from toilless.sops.service_error_rate.settings import resolve

    ctx = SandboxContext(home=tmp_path, preferred_ports=False)
    service = ServiceErrorRateService()
    service.start(ctx)
    try:
        for conn_id, connection in service.connections(ctx).items():
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
        override = json.loads(service.variables(ctx)["toilless_service_error_rate"])
        settings = resolve(deep_merge(read_defaults("service_error_rate"), override), {})
        settings.update(dry_run=False, incident="run:sandbox-test")
        pods = steps.check_pods(settings)
        assert pods["replicas"] == 3
        unhealthy = [pod for pod in pods["pods"] if pod["unhealthy"]]
        assert [pod["reasons"] for pod in unhealthy] == [["CrashLoopBackOff", "Error"]]
        assert unhealthy[0]["name"] in pods["owned_pods"]
        # The service's /metrics follows the pods: the crash-looping one answers 5xx.
        time.sleep(1.2)
        with urllib.request.urlopen(ctx.published["service_error_rate"]["metrics"], timeout=5) as answer:
            text = answer.read().decode()
        assert f'pod="{unhealthy[0]["name"]}",code="503"' in text
        assert text.count('code="200"') == 3
        # A restart through the SOP's own step: the stand-in controller rolls out new, healthy pods.
        decision = {"action": "restart"}
        assert steps.act(settings, decision)["acted"] is True
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            after = steps.check_pods(settings)
            if after["pods"] and not any(pod["unhealthy"] for pod in after["pods"]) and len(after["owned_pods"]) == 3:
                break
            time.sleep(0.3)
        else:
            raise AssertionError(f"pods after the restart: {after}")
        assert {pod["name"] for pod in after["pods"]}.isdisjoint(pod["name"] for pod in pods["pods"])
        assert (NAMESPACE, DEPLOYMENT) == ("shop", "checkout")
    finally:
        service.stop()
