"""App down end to end (dag.test) against the Kubernetes emulator, a stand-in Deployment controller and the demo web
app, which really answers 500 while the QA build is deployed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from sandbox.app_down_data import GOOD_IMAGE, QA_IMAGE
from sandbox.slack_sink import SlackSink
from tests.sops.app_down.conftest import DAG_ID, World

pytestmark = pytest.mark.integration


def _states(run: Any) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def _texts(sink: SlackSink, channel: str) -> list[str]:
    return [message["text"] for message in sink.messages(channel)]


def test_outage_story_rolls_back_the_qa_build_and_recovers(
    world: World, run_dag: Callable[..., Any], slack_sink: SlackSink
) -> None:
    """A QA build rolled out 10 minutes ago; the team's restart did not help; the SOP rolls back to the release."""
    world.running_release()
    world.deploy_qa_build(minutes_ago=10)
    world.restart_by_hand(minutes_ago=5)
    assert requests.get(f"{world.app.url}/health", timeout=5).status_code == 500
    world.controller.start(interval=0.1)
    alert = {
        "alertname": "AppDown",
        "status": "firing",
        "labels": {"alertname": "AppDown", "deployment": "web"},
        "annotations": {"summary": "shop unreachable"},
        "startsAt": (datetime.now(UTC) - timedelta(minutes=8)).isoformat(),
        "fingerprint": "a1b2c3",
    }

    run = run_dag(DAG_ID, run_conf={"alert": alert})

    states = _states(run)
    assert run.state == "success", states
    assert states["roll_back_deployment"] == "success"
    assert states["restart_deployment"] == "skipped"
    assert states["verify_recovery"] == "success"
    assert states["escalate_again"] == "skipped"
    # The rollback is kubectl's JSON patch back to revision 1's template (the QA revisions 2 and 3 are skipped).
    [rollback] = world.action_patches()
    assert rollback.headers["Content-Type"] == "application/json-patch+json"
    assert rollback.data[0]["path"] == "/spec/template"
    assert rollback.data[0]["value"]["spec"]["containers"][0]["image"] == GOOD_IMAGE
    assert "pod-template-hash" not in rollback.data[0]["value"]["metadata"]["labels"]
    assert rollback.data[1]["value"]["kubernetes.io/change-cause"] == "release 1.4.2"
    assert world.image() == GOOD_IMAGE
    assert requests.get(f"{world.app.url}/health", timeout=5).status_code == 200
    # Escalated to every role's channel with the evidence, then the timeline to the incident channel.
    for channel in ("ops", "networking", "infrastructure", "developers"):
        assert any("is unreachable" in text for text in _texts(slack_sink, channel)), channel
    [timeline] = [t for t in _texts(slack_sink, "ops") if "recovered" in t]
    assert "decision: *rollback*" in timeline
    assert "not chosen: restart" in timeline
    assert "already restarted at" in timeline
    assert "recovered at" in timeline
    assert _texts(slack_sink, "urgent") == []


def test_crash_loop_without_a_recent_rollout_is_restarted(
    world: World, run_dag: Callable[..., Any], slack_sink: SlackSink
) -> None:
    world.crashing = True
    world.running_release(days_ago=3)
    world.controller.start(interval=0.1)
    assert requests.get(f"{world.app.url}/health", timeout=5).status_code == 503

    run = run_dag(DAG_ID)

    states = _states(run)
    assert run.state == "success", states
    assert states["restart_deployment"] == "success"
    assert states["roll_back_deployment"] == "skipped"
    [restart] = world.action_patches()
    assert restart.headers["Content-Type"] == "application/strategic-merge-patch+json"
    assert set(restart.data["spec"]["template"]["metadata"]["annotations"]) == {"kubectl.kubernetes.io/restartedAt"}
    assert world.image() == GOOD_IMAGE
    [timeline] = [t for t in _texts(slack_sink, "ops") if "App down:" in t and "recovered" in t]
    assert "decision: *restart*" in timeline
    assert "CrashLoopBackOff" in timeline


def test_an_app_that_answers_is_a_false_alarm_and_nothing_is_done(
    world: World, run_dag: Callable[..., Any], slack_sink: SlackSink
) -> None:
    world.running_release()
    world.controller.start(interval=0.1)

    run = run_dag(DAG_ID)

    states = _states(run)
    assert run.state == "success", states
    assert states["escalate_outage"] == "skipped"
    assert states["gather_evidence"] == "skipped"
    assert world.patches() == []
    [report] = _texts(slack_sink, "ops")
    assert "false alarm" in report
    assert _texts(slack_sink, "developers") == []


def test_dry_run_decides_the_rollback_and_changes_nothing(
    world: World, run_dag: Callable[..., Any], slack_sink: SlackSink
) -> None:
    world.running_release()
    world.deploy_qa_build()
    world.controller.start(interval=0.1)

    run = run_dag(DAG_ID, run_conf={"dry_run": True})

    states = _states(run)
    assert run.state == "success", states
    assert states["roll_back_deployment"] == "success"
    assert states["verify_recovery"] == "skipped"
    assert world.patches() == []
    assert world.image() == QA_IMAGE
    [timeline] = [t for t in _texts(slack_sink, "ops") if "dry run" in t]
    assert "dry run: would rollback" in timeline
    assert _texts(slack_sink, "urgent") == []


def test_saturated_pods_are_scaled_within_bounds(
    world: World, run_dag: Callable[..., Any], slack_sink: SlackSink
) -> None:
    world.running_release(days_ago=3, cpu_limit="500m")
    world.pod_metrics("480m")  # 96% of the limit
    world.app.replicas_needed = 4
    world.controller.start(interval=0.1)
    assert requests.get(f"{world.app.url}/health", timeout=5).status_code == 503

    run = run_dag(DAG_ID)

    states = _states(run)
    assert run.state == "success", states
    assert states["scale_deployment"] == "success"
    [scale] = world.patches("/scale")
    assert scale.headers["Content-Type"] == "application/merge-patch+json"
    assert scale.data == {"spec": {"replicas": 4}}  # 2 + step 2, within max 10
    assert requests.get(f"{world.app.url}/health", timeout=5).status_code == 200
    [timeline] = [t for t in _texts(slack_sink, "ops") if "App down:" in t and "recovered" in t]
    assert "decision: *scale*" in timeline
