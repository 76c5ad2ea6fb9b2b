"""The action step's promises, on the emulator: a retried action never acts twice, dry run and the maintenance window
change nothing, a Deployment changed since the decision is not rolled back, the circuit breaker holds per Deployment.
And bad input: unknown Deployment, unreadable namespace, a non-http(s) endpoint fail clearly and change nothing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from sandbox.app_down_data import GOOD_IMAGE, QA_IMAGE
from tests.sops.app_down.conftest import World
from toilless.common.errors import InvalidInput
from toilless.hooks.kubernetes import DeploymentNotFound, NamespaceNotReadable
from toilless.sops.app_down import steps


def _settings(**params: Any) -> dict[str, Any]:
    return steps.resolve_settings(params, {"run_id": params.pop("run_id", "manual__test")})


def _rollback_decision(world: World) -> dict[str, Any]:
    return {"action": "rollback", "to_revision": 1, "from_images": [QA_IMAGE], "to_images": [GOOD_IMAGE]}


@pytest.fixture
def outage(world: World) -> World:
    world.running_release()
    world.deploy_qa_build()
    return world


def test_a_retried_rollback_never_acts_twice(outage: World) -> None:
    settings = _settings()
    decision = _rollback_decision(outage)

    first = steps.act(settings, decision, "rollback")
    retry = steps.act(settings, decision, "rollback")  # same run: its earlier try acted
    other_run = steps.act({**settings, "run_id": "manual__other"}, decision, "rollback")

    assert first["acted"] is True
    assert retry["acted"] is True
    assert retry["reason"] == "done by an earlier try"
    assert other_run["acted"] is False
    assert other_run["gate"]["check"] == "once_per_incident"
    assert len(outage.action_patches()) == 1


def test_a_crash_between_marker_and_rollback_is_not_repeated(outage: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from toilless.hooks.kubernetes import KubernetesWorkloadHook

    settings = _settings()
    decision = _rollback_decision(outage)

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("worker lost mid-call")

    with monkeypatch.context() as patched:
        patched.setattr(KubernetesWorkloadHook, "rollback_deployment", crash)
        with pytest.raises(ConnectionError):
            steps.act(settings, decision, "rollback")
    steps.act({**settings, "run_id": "manual__next"}, decision, "rollback")

    assert outage.action_patches() == []  # the marker says this incident was acted on: a person looks now
    assert outage.image() == QA_IMAGE


def test_dry_run_changes_nothing(outage: World) -> None:
    result = steps.act(_settings(dry_run=True), _rollback_decision(outage), "rollback")

    assert result["acted"] is False
    assert result["reason"].startswith("dry run: would rollback")
    assert outage.patches() == []  # not even the marker


def test_the_maintenance_window_changes_nothing(outage: World) -> None:
    outage.configure(maintenance_window={"days": ["sunday"], "start": "02:00", "end": "04:00", "timezone": "UTC"})
    settings = _settings()
    with time_machine.travel(datetime(2026, 11, 29, 3, 0, tzinfo=UTC), tick=False):  # a Sunday, 03:00 UTC
        result = steps.act(settings, _rollback_decision(outage), "rollback")

    assert result["acted"] is False
    assert result["gate"]["check"] == "time_policy"
    assert result["gate"]["allowed_from"] == "2026-11-29T04:00:00+00:00"
    assert outage.patches() == []


def test_a_deployment_changed_since_the_decision_is_not_rolled_back(outage: World) -> None:
    decision = {**_rollback_decision(outage), "from_images": ["shop/web:something-else"]}

    result = steps.act(_settings(), decision, "rollback")

    assert result["acted"] is False
    assert "changed since the decision" in result["reason"]
    assert outage.action_patches() == []


def test_circuit_breaker_per_deployment(outage: World) -> None:
    outage.configure(gate={"cooldown_minutes": 0, "circuit_breaker": {"max_actions": 1, "window_hours": 6}})
    scale = {"action": "scale", "replicas": 4}

    first = steps.act(_settings(alert=_alert("one")), scale, "scale")
    second = steps.act(_settings(alert=_alert("two")), scale, "scale")  # another incident, same Deployment

    assert first["acted"] is True
    assert second["acted"] is False
    assert second["gate"]["check"] == "circuit_breaker"
    assert len(outage.patches("/scale")) == 1
    assert outage.patches("/scale")[0].data == {"spec": {"replicas": 4}}


def _alert(fingerprint: str) -> dict[str, Any]:
    return {
        "alertname": "AppDown",
        "labels": {"deployment": "web"},
        "startsAt": datetime.now(UTC).isoformat(),
        "fingerprint": fingerprint,
    }


# -- bad input ---------------------------------------------------------------------------------------------------
def test_unknown_deployment_in_the_cluster_is_a_clear_error(world: World) -> None:
    world.configure(
        services={
            "web": {
                "namespace": world.namespace,
                "deployment": "gone",
                "endpoints": {"public": [f"{world.app.url}/health"]},
            }
        }
    )
    with pytest.raises(DeploymentNotFound, match="'gone' does not exist"):
        steps.verify_unreachable(_settings())
    assert world.patches() == []


def test_a_deployment_that_is_not_configured_is_refused(world: World) -> None:
    with pytest.raises(InvalidInput, match="unknown Deployment 'payments'"):
        _settings(deployment="payments")


def test_a_namespace_the_connection_cannot_read(world: World) -> None:
    locked = "locked-" + world.namespace
    world.k8s._call(lambda: world.k8s.emulator["get", re.compile(rf"^/apis/apps/v1/namespaces/{locked}/.*$")] << 403)
    world.configure(
        services={
            "web": {"namespace": locked, "deployment": "web", "endpoints": {"public": [f"{world.app.url}/health"]}}
        }
    )
    with pytest.raises(NamespaceNotReadable, match="may not read"):
        steps.verify_unreachable(_settings())
    assert world.app.requests == 0  # failed before probing anything


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("ftp://127.0.0.1/health", id="ftp"),
        pytest.param("file:///etc/passwd", id="file"),
        pytest.param("127.0.0.1:8080/health", id="no-scheme"),
        pytest.param("http://", id="no-host"),
        pytest.param("http://127.0.0.1/a b", id="space"),
    ],
)
def test_an_endpoint_that_is_not_http_is_refused(world: World, url: str) -> None:
    world.configure(
        services={"web": {"namespace": world.namespace, "deployment": "web", "endpoints": {"public": [url]}}}
    )
    with pytest.raises(InvalidInput, match="http"):
        _settings()


def test_an_alert_from_the_future_does_not_move_the_outage_start(world: World) -> None:
    """A skewed or hostile startsAt a day ahead would make every rollout of the next day look 'recent'."""
    alert = {**_alert("future"), "startsAt": (datetime.now(UTC) + timedelta(days=1)).isoformat()}

    settings = _settings(alert=alert)

    assert datetime.fromisoformat(settings["outage_started_at"]) <= datetime.now(UTC)


@pytest.mark.parametrize(
    "label",
    [
        pytest.param("<!channel>", id="mention"),
        pytest.param("web\nx", id="newline"),
        pytest.param("x" * 5000, id="huge"),
    ],
)
def test_a_hostile_deployment_label_is_refused_bounded(world: World, label: str) -> None:
    alert = {**_alert("hostile"), "labels": {"deployment": label}}
    with pytest.raises(InvalidInput, match="unknown Deployment") as raised:
        _settings(alert=alert)
    assert len(str(raised.value)) < 400


def test_scale_not_again_inside_the_cooldown(world: World) -> None:
    world.running_release()
    world.configure(gate={"cooldown_minutes": 30, "circuit_breaker": {"max_actions": 5, "window_hours": 6}})
    scale = {"action": "scale", "replicas": 4}

    first = steps.act(_settings(alert=_alert("one")), scale, "scale")
    again = steps.act(_settings(alert=_alert("two")), {"action": "scale", "replicas": 6}, "scale")

    assert first["acted"] is True
    assert again["acted"] is False
    assert again["gate"]["check"] == "cooldown"
    assert [p.data for p in world.patches("/scale")] == [{"spec": {"replicas": 4}}]
