"""The sandbox's outage story without Airflow: the documented one-liner deploys the QA build, the demo app answers
500, the controller made revision 2; kubectl's rollback through the hook brings revision 1's image back and the app
answers again."""

from __future__ import annotations

import json
import time

import requests

from sandbox.app_down_data import DEPLOYMENT, GOOD_IMAGE, NAMESPACE, QA_IMAGE
from sandbox.service import SandboxContext
from sandbox.services.app_down import CONN_ID, AppDownService


def _wait_for(check, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_sandbox_outage_story(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from toilless.hooks.kubernetes import KubernetesWorkloadHook

    service = AppDownService()
    ctx = SandboxContext(home=tmp_path, preferred_ports=False)
    service.start(ctx)
    try:
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(service.connections(ctx)[CONN_ID]))
        assert (
            json.loads(service.variables(ctx)["toilless_app_down"])["services"]["web"]["kubernetes_conn_id"] == CONN_ID
        )
        app = ctx.published["app_down"]["app"]
        assert requests.get(f"{app}/health", timeout=5).status_code == 200
        # The documented one-liner: deploy the QA build.
        requests.patch(
            f"{service.k8s.url}/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{DEPLOYMENT}",
            headers={"Content-Type": "application/strategic-merge-patch+json"},
            data=json.dumps(
                {
                    "metadata": {"annotations": {"kubernetes.io/change-cause": "deploy QA build"}},
                    "spec": {"template": {"spec": {"containers": [{"name": "app", "image": QA_IMAGE}]}}},
                }
            ),
            timeout=5,
        ).raise_for_status()
        hook = KubernetesWorkloadHook(kubernetes_conn_id=CONN_ID)
        _wait_for(lambda: len(hook.deployment_revisions(NAMESPACE, DEPLOYMENT)) == 2)
        assert requests.get(f"{app}/health", timeout=5).status_code == 500
        assert requests.get(f"{app}/internal/health", timeout=5).status_code == 200

        hook.rollback_deployment(NAMESPACE, DEPLOYMENT)

        _wait_for(lambda: requests.get(f"{app}/health", timeout=5).status_code == 200)
        _wait_for(lambda: hook.deployment_revisions(NAMESPACE, DEPLOYMENT)[-1]["revision"] == 3)
        history = hook.deployment_revisions(NAMESPACE, DEPLOYMENT)
        assert [(row["revision"], row["images"]) for row in history] == [(2, [QA_IMAGE]), (3, [GOOD_IMAGE])]
    finally:
        service.stop()
