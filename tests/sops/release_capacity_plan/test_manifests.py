"""Rendered manifests pass the Kubernetes schema offline; the seed's hand-written mistakes do not."""

from __future__ import annotations

import copy

import pytest
import yaml

from sandbox.release_capacity_plan_data import deployment_body
from toilless.sops.release_capacity_plan.manifests import (
    PLAN_ANNOTATION,
    ManifestInvalid,
    apply_patch,
    clean_manifest,
    component_manifest,
    deployment_patch,
    hpa_manifest,
    render_yaml,
    validate_manifest,
)
from toilless.sops.release_capacity_plan.plan import Figures, plan_capacity
from toilless.sops.release_capacity_plan.reading import deployment_from_manifest

VERSION = "1.33"
SEED = Figures(1300, 2600, 500, memory_utilisation_pct=85, memory_growth_per_user_pct=25)


def _planned() -> tuple[dict, dict]:
    current = deployment_body("shop", "app")
    plan = plan_capacity([deployment_from_manifest(current)], SEED).as_dict()
    return current, plan["deployments"][0]


def test_patch_and_manifest_after_it_pass_the_schema() -> None:
    current, planned = _planned()
    patch = deployment_patch(planned, plan_id="2026.12.1.abc")
    assert patch["spec"]["replicas"] == 6
    assert patch["metadata"]["annotations"][PLAN_ANNOTATION] == "2026.12.1.abc"
    after = apply_patch(clean_manifest(current), patch)
    assert validate_manifest(after, VERSION) == VERSION
    [container] = after["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "shop/app:2026.11"  # merged by name: the rest of the container is kept
    assert container["resources"]["requests"]["memory"] == "1088Mi"
    assert "status" not in after


def test_strategic_merge_keeps_other_containers() -> None:
    current = deployment_body("shop", "app")
    sidecar = {"name": "proxy", "image": "envoy:1"}
    current["spec"]["template"]["spec"]["containers"].append(sidecar)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "resources": {"limits": {"cpu": "2"}}}]}}}}
    after = apply_patch(current, patch)
    containers = after["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["app", "proxy"]
    assert containers[0]["resources"]["limits"] == {"memory": "1Gi", "cpu": "2"}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        pytest.param(lambda m: m["spec"].__setitem__("Replicas", m["spec"].pop("replicas")), "Replicas", id="Replicas"),
        pytest.param(lambda m: m.__setitem__("ApiVersion", m.pop("apiVersion")), "apiVersion", id="ApiVersion"),
        pytest.param(lambda m: m["spec"].__setitem__("replicas", "6"), "not of type 'integer'", id="replicas-string"),
        pytest.param(
            lambda m: m["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"].__setitem__(
                "memory", "512mb"
            ),
            "512Mi",
            id="512mb",
        ),
        pytest.param(
            lambda m: m["spec"]["template"]["spec"]["containers"][0].__setitem__("name", "order_processor"),
            "order-processor",
            id="order_processor",
        ),
        pytest.param(lambda m: m.__setitem__("kind", "Deploymnet"), "Deploymnet", id="unknown-kind"),
    ],
)
def test_the_seed_s_hand_written_mistakes_fail_validation(mutate, message: str) -> None:
    manifest = clean_manifest(deployment_body("shop", "app"))
    mutate(manifest)
    with pytest.raises(ManifestInvalid, match=message):
        validate_manifest(manifest, VERSION)


def test_new_component_manifest_is_valid() -> None:
    manifest = component_manifest(
        {"name": "order-processor", "namespace": "shop", "replicas": 1, "memory_request": "1Gi", "cpu_request": "1"}
    )
    assert validate_manifest(manifest, VERSION) == VERSION


def test_hpa_suggestion_is_valid_and_starts_at_the_plan() -> None:
    _, planned = _planned()
    hpa = hpa_manifest(planned, max_factor=1.25, target_cpu_utilisation_pct=70, max_replicas=50)
    assert hpa is not None
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (6, 8)
    assert validate_manifest(hpa, VERSION) == VERSION


def test_no_hpa_without_a_cpu_request() -> None:
    _, planned = _planned()
    planned = copy.deepcopy(planned)
    planned["containers"][0]["cpu_request"] = None
    assert hpa_manifest(planned, max_factor=2, target_cpu_utilisation_pct=70, max_replicas=50) is None


def test_yaml_round_trips_with_lower_case_keys() -> None:
    current, planned = _planned()
    text = render_yaml([apply_patch(clean_manifest(current), deployment_patch(planned))])
    assert "apiVersion: apps/v1" in text
    assert "replicas: 6" in text
    assert yaml.safe_load(text)["spec"]["replicas"] == 6


def test_validation_works_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """The schemas ship in the package: any socket use would fail this."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("schema validation tried to use the network")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    manifest = clean_manifest(deployment_body("shop", "app"))
    assert validate_manifest(manifest, "1.30") == "1.30"
