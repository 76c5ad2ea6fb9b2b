"""Triage alert: the DAG end to end (dag.test) with the sandbox's settings, reporting to the Slack sink."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from sandbox.services.triage_alert import OVERRIDE
from sandbox.slack_sink import SlackSink

pytestmark = pytest.mark.integration

DAG_ID = "triage_alert"
CHANNEL = "non_urgent"


@pytest.fixture
def configure(set_variable: Callable[[str, Any], None]) -> Callable[..., str]:
    """Point the SOP at a target of its own (run state is kept per target) with the sandbox's override; returns it."""

    def _configure(**overrides: Any) -> str:
        target = f"target-{uuid.uuid4().hex[:8]}"
        settings = json.loads(json.dumps(OVERRIDE))
        settings["stand_in"]["target"] = target
        settings.update(overrides)
        set_variable(f"toilless_{DAG_ID}", settings)
        return target

    return _configure


def report(sink: SlackSink) -> str:
    [message] = sink.messages(CHANNEL)
    return message["text"]


def test_below_threshold_reports_and_changes_nothing(
    run_dag: Callable[..., Any], slack_sink: SlackSink, configure: Callable[..., str]
) -> None:
    target = configure(stand_in={"target": "quiet-target", "value": 10})
    assert target
    run = run_dag(DAG_ID)
    assert run.state == "success"
    text = report(slack_sink)
    assert "quiet-target: 10 is below the threshold 90" in text
    assert "acted:" not in text


def test_dry_run_reports_what_it_would_do(
    run_dag: Callable[..., Any], slack_sink: SlackSink, configure: Callable[..., str]
) -> None:
    target = configure()
    run = run_dag(DAG_ID, run_conf={"dry_run": True})
    assert run.state == "success"
    text = report(slack_sink)
    assert "dry run: nothing was changed" in text
    assert f"not acted: dry run: would act on {target}" in text


def test_acts_once_then_the_cool_down_holds(
    run_dag: Callable[..., Any], slack_sink: SlackSink, configure: Callable[..., str]
) -> None:
    target = configure()
    assert run_dag(DAG_ID).state == "success"
    assert f"acted: act on {target} allowed" in report(slack_sink)
    slack_sink.clear()
    assert run_dag(DAG_ID).state == "success"
    assert f"not acted: cool-down: last action on {target}" in report(slack_sink)


def test_a_param_that_would_loosen_the_policy_fails_the_run_before_any_report(
    run_dag: Callable[..., Any], slack_sink: SlackSink, configure: Callable[..., str]
) -> None:
    configure()
    run = run_dag(DAG_ID, run_conf={"threshold": 50})
    assert run.state == "failed"
    texts = [message["text"] for message in slack_sink.messages()]
    # The shared failure notifier names the failed task; no report was posted.
    assert any("resolve_settings" in text for text in texts)
    assert not [text for text in texts if "Triage alert" in text]
