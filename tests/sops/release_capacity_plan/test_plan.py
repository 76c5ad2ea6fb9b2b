"""plan_capacity on the seed's own numbers (SOPS.md, "Release capacity planning") and its edges."""

from __future__ import annotations

import pytest

from sandbox.release_capacity_plan_data import deployment_body
from toilless.sops.release_capacity_plan.contracts import ContractError, memory_bytes
from toilless.sops.release_capacity_plan.plan import (
    ContainerNow,
    DeploymentNow,
    Figures,
    plan_capacity,
    replicas_for,
)
from toilless.sops.release_capacity_plan.reading import component_from_param, deployment_from_manifest

GI = 2**30
MI = 2**20
#: The seed: 1300 concurrent users now, 2600 after, 500 per replica, 85% of memory used, +25% memory per user.
SEED = Figures(
    current_concurrent_users=1300,
    expected_concurrent_users=2600,
    users_per_replica=500,
    memory_utilisation_pct=85,
    memory_growth_per_user_pct=25,
)
APP = DeploymentNow("shop", "app", 3, (ContainerNow("app", memory_request=GI, memory_limit=GI, cpu_request=500),))


def _rows(plan, field: str) -> list:
    return [change for change in plan.changes if change.field == field]


def test_seed_figures_give_six_replicas_and_a_valid_memory_request() -> None:
    plan = plan_capacity([APP], SEED)
    [deployment] = plan.deployments
    assert (deployment.replicas_before, deployment.replicas) == (3, 6)
    [container] = deployment.containers
    # 1Gi x 85% = 870.4Mi used by ~433 users per pod; 2600/6 = ~433 per pod after; x 1.25 = 1088Mi (a 64Mi step).
    assert container.memory_request == "1088Mi"
    assert memory_bytes(container.memory_request, "planned") == 1088 * MI
    assert container.memory_limit == "1088Mi"  # the limit must hold the request
    [replicas] = _rows(plan, "replicas")
    assert "ceil(2600 users" in replicas.reason
    assert "/ 500 per replica) = 6" in replicas.reason


def test_today_s_figures_match_today_s_replicas() -> None:
    # 1300 / 500 -> 3: the seed's current deployment, a sanity check of the formula.
    assert replicas_for(1300, 500) == 3


@pytest.mark.parametrize(
    ("users", "per_replica", "headroom", "expected"),
    [
        pytest.param(2600, 500, 0, 6, id="seed"),
        pytest.param(2500, 500, 0, 5, id="exact-multiple"),
        pytest.param(2501, 500, 0, 6, id="one-over"),
        pytest.param(2600, 500, 20, 7, id="20pct-headroom"),
        pytest.param(0, 500, 0, 1, id="no-users-still-one"),
        pytest.param(3000, 500, 10, 7, id="float-boundary-3300-over-500"),
    ],
)
def test_replicas_for(users: int, per_replica: int, headroom: float, expected: int) -> None:
    assert replicas_for(users, per_replica, headroom) == expected


def test_never_below_the_current_replicas_or_requests() -> None:
    big = DeploymentNow("shop", "app", 10, (ContainerNow("app", memory_request=4 * GI, cpu_request=2000),))
    # 10 pods for 1300 users -> 260 users per pod after (2x); 4Gi x 20% x 2 x 1.25 = 2Gi, below the 4Gi requested.
    plan = plan_capacity([big], Figures(**{**SEED.__dict__, "memory_utilisation_pct": 20}))
    [deployment] = plan.deployments
    assert deployment.replicas == 10
    assert deployment.containers[0].memory_request == "4Gi"
    assert "kept the current 10" in _rows(plan, "replicas")[0].reason
    assert "kept the current 4Gi" in _rows(plan, "memory request")[0].reason


def test_new_component_from_its_stated_needs() -> None:
    processor = component_from_param({"name": "order-processor", "memory": "1Gi", "cpu_factor_of_app": 2})
    plan = plan_capacity([APP], SEED, [processor])
    [component] = plan.new_components
    assert component["memory_request"] == "1Gi"
    assert component["cpu_request"] == "1"  # twice the app's 500m


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param({"name": "order_processor", "memory": "1Gi", "cpu": "1"}, "DNS-1123", id="underscore-name"),
        pytest.param({"name": "order-processor", "memory": "512mb", "cpu": "1"}, "512Mi", id="512mb"),
        pytest.param({"name": "order-processor", "memory": "1Gi"}, "give its CPU", id="no-cpu"),
        pytest.param({"name": "p", "memory": "1Gi", "cpu": "1", "Replicas": 2}, "unknown field", id="capital-field"),
        pytest.param({"name": "p", "memory": "1Gi", "cpu": "1", "replicas": 0}, "at least 1", id="zero-replicas"),
    ],
)
def test_invalid_new_components_are_refused(spec: dict, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        plan_capacity([APP], SEED, [component_from_param(spec)])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"expected_concurrent_users": -1}, "at least 0", id="negative-users"),
        pytest.param({"current_concurrent_users": 0}, "at least 1", id="no-current-users"),
        pytest.param({"users_per_replica": 0}, "at least 1", id="zero-per-replica"),
        pytest.param({"headroom_pct": -5}, "at least 0", id="negative-headroom"),
        pytest.param({"memory_utilisation_pct": float("nan")}, "finite", id="nan"),
        pytest.param({"expected_concurrent_users": 2600.5}, "whole number", id="fractional-users"),
    ],
)
def test_invalid_figures_are_refused(changes: dict, message: str) -> None:
    fields = {**SEED.__dict__, **changes}
    with pytest.raises(ContractError, match=message):
        Figures(**fields)


def test_replica_cap() -> None:
    figures = Figures(**{**SEED.__dict__, "expected_concurrent_users": 1_000_000, "max_replicas": 50})
    with pytest.raises(ContractError, match="exceeds max_replicas 50"):
        plan_capacity([APP], figures)


def test_deployment_read_from_the_api_is_parsed_and_checked() -> None:
    deployment = deployment_from_manifest(deployment_body("shop", "app"))
    assert deployment.replicas == 3
    assert deployment.containers[0] == ContainerNow("app", GI, GI, 500, 1000)
    bad = deployment_body("shop", "app")
    bad["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"] = "512mb"
    with pytest.raises(ContractError, match="512Mi"):
        deployment_from_manifest(bad)


def test_a_container_without_resources_is_left_alone() -> None:
    bare = DeploymentNow("shop", "app", 3, (ContainerNow("app"),))
    plan = plan_capacity([bare], SEED)
    assert plan.deployments[0].containers[0].memory_request is None
    assert any(c.field == "memory" and "no request or limit" in c.reason for c in plan.changes)


def test_peak_usage_across_pods_and_its_contract() -> None:
    from toilless.sops.release_capacity_plan.reading import peak_usage

    pods = [
        {"containers": [{"name": "app", "usage": {"memory": "700Mi", "cpu": "200m"}}]},
        {"containers": [{"name": "app", "usage": {"memory": "900Mi", "cpu": "150m"}}]},
    ]
    assert peak_usage(pods) == {"app": {"memory": 900 * MI, "cpu": 200}}
    with pytest.raises(ContractError, match="512Mi"):
        peak_usage([{"containers": [{"name": "app", "usage": {"memory": "512mb"}}]}])


def test_measured_usage_is_used_instead_of_the_stated_utilisation() -> None:
    measured = DeploymentNow("shop", "app", 3, (ContainerNow("app", memory_request=GI, memory_used=512 * MI),))
    plan = plan_capacity([measured], SEED)
    # 512Mi measured x 1 x 1.25 = 640Mi, below the 1Gi requested: kept.
    assert plan.deployments[0].containers[0].memory_request == "1Gi"
    assert "512.0Mi used now (measured peak)" in _rows(plan, "memory request")[0].reason


@pytest.mark.parametrize(
    "pods",
    [
        pytest.param(["not-a-pod"], id="pod-not-an-object"),
        pytest.param([{"containers": "app"}], id="containers-not-a-list"),
        pytest.param([{"containers": [["app"]]}], id="container-not-an-object"),
        pytest.param([{"containers": [{"name": "app", "usage": "900Mi"}]}], id="usage-not-an-object"),
    ],
)
def test_hostile_pod_metrics_are_refused_clearly(pods: list) -> None:
    from toilless.sops.release_capacity_plan.reading import peak_usage

    with pytest.raises(ContractError, match="PodMetrics"):
        peak_usage(pods)
