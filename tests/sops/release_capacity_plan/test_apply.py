"""apply_capacity and verify_rollout at the step, against the Kubernetes emulator: once across retries, never below
the current replicas, refused when the Deployment changed, inside the maintenance window or without approval.

The steps run as the DAG runs them, with the run's XCom stood in: an approval answer is what the approval task
returns (a person's Approve arrives the same way); the live HITL round trip is the approval operator's own test
(tests/sops/rds_storage_guard/test_live.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import time_machine

from sandbox.kubernetes import KubernetesEmulatorServer
from sandbox.release_capacity_plan_data import SEED_PARAMS, RolloutStandIn, create_deployment, deployment_body
from toilless.common.errors import InvalidInput
from toilless.sops.release_capacity_plan import steps
from toilless.sops.release_capacity_plan.manifests import PLAN_ANNOTATION

pytestmark = pytest.mark.integration

APPROVED = {"chosen_options": ["Approve"], "responded_by_user": "release-manager"}
#: A Wednesday noon, and a maintenance window around it.
WEDNESDAY_NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
WINDOW = {"days": ["wednesday"], "start": "11:00", "end": "13:00", "timezone": "UTC"}


class FakeTaskInstance:
    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers

    def xcom_pull(self, task_ids: str, **kwargs: Any) -> Any:
        return self.answers.get(task_ids)


class Cluster:
    def __init__(self, k8s: KubernetesEmulatorServer, configure: Callable[..., None]) -> None:
        self.k8s, self.configure = k8s, configure
        self.namespace = f"shop-{uuid.uuid4().hex[:8]}"

    def plan(self, **params: Any) -> tuple[dict, dict, dict, dict]:
        settings = steps.resolve_settings({**SEED_PARAMS, "namespace": self.namespace, **params})
        current = steps.read_current_resources(settings)
        capacity = steps.plan_capacity(settings, current)
        rendered = steps.render_manifests(settings, current, capacity)
        return settings, current, capacity, rendered

    def apply(self, planned: tuple[dict, dict, dict, dict], approval: dict | None = APPROVED) -> dict[str, Any]:
        settings, current, capacity, rendered = planned
        context = {"ti": FakeTaskInstance({"request_approval": approval}), "params": {}}
        return steps.apply_capacity(context, settings, current, capacity, rendered)

    def deployment(self) -> dict[str, Any]:
        return self.k8s.deployment(self.namespace, "app")

    def patches(self) -> list[Any]:
        return self.k8s.deployment_patches(self.namespace, "app")

    def scale_by_hand(self, replicas: int) -> None:
        url = f"{self.k8s.url}/apis/apps/v1/namespaces/{self.namespace}/deployments/app"
        headers = {"Content-Type": "application/merge-patch+json"}
        requests.patch(url, data=json.dumps({"spec": {"replicas": replicas}}), headers=headers, timeout=10)


@pytest.fixture
def cluster(kubernetes_emulator: KubernetesEmulatorServer, set_variable: Callable[[str, Any], None], tmp_path: Path):
    holder: dict[str, Cluster] = {}

    def configure(**overrides: Any) -> None:
        settings = {
            "allowed_namespaces": [holder["cluster"].namespace],
            "as_built_dir": str(tmp_path),
            "apply": {"enabled": True, "verify_timeout_seconds": 5, "verify_poll_seconds": 0.1},
            **overrides,
        }
        set_variable("toilless_release_capacity_plan", settings)

    holder["cluster"] = Cluster(kubernetes_emulator, configure)
    configure()
    create_deployment(kubernetes_emulator.url, deployment_body(holder["cluster"].namespace, "app"))
    return holder["cluster"]


def test_approved_plan_patches_the_deployment_exactly_once_across_retries(cluster: Cluster) -> None:
    planned = cluster.plan()
    first = cluster.apply(planned)
    assert [r["applied"] for r in first["results"]] == [True]
    # A retry (the answer was lost, the worker died after the patch) re-reads the marker and does nothing.
    second = cluster.apply(planned)
    assert [r["applied"] for r in second["results"]] == [False]
    assert second["results"][0]["gate"]["check"] == "once_per_incident"
    assert len(cluster.patches()) == 1

    deployment = cluster.deployment()
    assert deployment["spec"]["replicas"] == 6
    assert deployment["metadata"]["annotations"][PLAN_ANNOTATION] == planned[3]["plan_id"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["requests"]["memory"] == "1088Mi"
    assert container["resources"]["limits"]["memory"] == "1088Mi"
    assert container["image"] == "shop/app:2026.11"  # the rest of the container is untouched


def test_never_scales_below_the_replicas_running_when_it_acts(cluster: Cluster) -> None:
    planned = cluster.plan()
    cluster.scale_by_hand(9)  # someone scaled up during the release window, after the plan
    result = cluster.apply(planned)
    assert result["results"][0]["replicas"] == 9
    assert cluster.deployment()["spec"]["replicas"] == 9


def test_resources_changed_since_the_plan_are_refused(cluster: Cluster) -> None:
    planned = cluster.plan()
    create_deployment(cluster.k8s.url, deployment_body(cluster.namespace, "app", memory="2Gi"))
    with pytest.raises(InvalidInput, match="changed since the plan"):
        cluster.apply(planned)
    assert cluster.patches() == []


def test_without_approval_nothing_is_applied(cluster: Cluster) -> None:
    planned = cluster.plan()
    with pytest.raises(InvalidInput, match="not approved"):
        cluster.apply(planned, approval={"chosen_options": ["Reject"], "responded_by_user": "release-manager"})
    assert cluster.patches() == []


def test_inside_the_maintenance_window_nothing_is_applied(cluster: Cluster) -> None:
    cluster.configure(maintenance_window=WINDOW)
    with time_machine.travel(WEDNESDAY_NOON, tick=True):
        planned = cluster.plan()
        result = cluster.apply(planned)
    [refused] = result["results"]
    assert refused["applied"] is False
    assert refused["gate"]["check"] == "time_policy"
    assert cluster.patches() == []


def test_dry_run_goes_through_the_gate_and_changes_nothing(cluster: Cluster) -> None:
    planned = cluster.plan(dry_run=True)
    result = cluster.apply(planned, approval=None)
    assert result["results"][0]["gate"]["check"] == "dry_run"
    assert cluster.patches() == []
    assert cluster.deployment()["spec"]["replicas"] == 3


def test_rollout_is_verified(cluster: Cluster) -> None:
    planned = cluster.plan()
    applied = cluster.apply(planned)
    # No controller in the emulator: the status still says 3 replicas, so the rollout is not done.
    waiting = steps.verify_rollout(
        {**planned[0], "apply": {**planned[0]["apply"], "verify_timeout_seconds": 0.3}}, applied
    )
    assert waiting["status"] == "timed_out"
    assert "replicas updated" in waiting["pending"][f"{cluster.namespace}/app"]
    with RolloutStandIn(cluster.k8s.url, cluster.namespace, ["app"]):
        verified = steps.verify_rollout(planned[0], applied)
    assert verified == {"status": "rolled_out", "verified": [f"{cluster.namespace}/app"], "pending": {}}


@pytest.mark.parametrize(
    ("status", "channel"),
    [
        pytest.param("rolled_out", "non_urgent", id="rolled-out"),
        pytest.param("nothing_applied", "non_urgent", id="nothing-applied"),
        pytest.param("timed_out", "urgent", id="timed-out-escalates"),
    ],
)
def test_outcome_goes_to_urgent_only_when_the_rollout_did_not_finish(slack_sink, status: str, channel: str) -> None:
    settings = {"release": "2026.12.1", "report_channel": "non_urgent"}
    applied = {"dry_run": False, "results": [{"target": "shop/app", "applied": True, "reason": "allowed"}]}
    pending = {"shop/app": "3 of 6 replicas available"} if status == "timed_out" else {}
    result = steps.report_outcome({}, settings, applied, {"status": status, "verified": [], "pending": pending})
    assert result["channel"] == channel
    [message] = slack_sink.messages(channel)
    assert f"rollout: {status}" in message["text"]


def test_usage_from_the_metrics_api_replaces_the_stated_utilisation(cluster: Cluster) -> None:
    cluster.configure(metrics={"source": "metrics_api"})
    pods = f"{cluster.k8s.url}/apis/metrics.k8s.io/v1beta1/namespaces/{cluster.namespace}/pods"
    labels = {"app.kubernetes.io/name": "app"}
    for pod, memory in (("app-1", "700Mi"), ("app-2", "900Mi")):
        metrics = {
            "apiVersion": "metrics.k8s.io/v1beta1",
            "kind": "PodMetrics",
            "metadata": {"name": pod, "namespace": cluster.namespace, "labels": labels},
            "containers": [{"name": "app", "usage": {"cpu": "312500000n", "memory": memory}}],
        }
        requests.post(pods, json=metrics, timeout=10).raise_for_status()
    _, current, capacity, _ = cluster.plan()
    assert current["deployments"][0]["usage"] == {"app": {"memory": 900 * 2**20, "cpu": 313}}
    [memory] = [c for c in capacity["changes"] if c["field"] == "memory request" and "(new)" not in c["target"]]
    # The busiest pod's 900Mi x 1 (same users per pod) x 1.25 per user = 1125Mi, up to a 64Mi step: 1152Mi.
    assert memory["after"] == "1152Mi"
    assert "measured peak" in memory["reason"]
