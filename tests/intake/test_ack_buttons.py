"""The intake's acknowledgement of a firing alert names its incident and carries Acknowledge and Silence 1h / 4h
buttons (toilless.slack_actions), escaped and within Slack's limits; a resolved notice asks nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from toilless.common import slack
from toilless.common.config import read_defaults
from toilless.incidents.events import incident_key
from toilless.intake import decisions
from toilless.intake.models import Alert
from toilless.slack_actions import buttons

SETTINGS = read_defaults("alert_intake")


def facts_for(labels: dict[str, str], **extra: Any) -> decisions.AlertFacts:
    alert = Alert.model_validate(
        {
            "status": "firing",
            "labels": {"alertname": "DiskFull", **labels},
            "startsAt": "2026-11-22T03:00:00Z",
            "fingerprint": "f00dcafe",
            **extra,
        }
    )
    return decisions.AlertFacts(alert, decisions.priority_for(alert.labels, SETTINGS), "prod", [])


def actions_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [block for block in message["blocks"] if block["type"] == "actions"]


INCIDENT = incident_key("f00dcafe", "2026-11-22T03:00:00Z")


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda f: decisions.ack_started(f, dag_id="d", run_id="r", run_link="", target="t"), id="started"),
        pytest.param(
            lambda f: decisions.ack_not_started(f, dag_id="d", target="t", reason="target busy: queued"), id="queued"
        ),
        pytest.param(lambda f: decisions.ack_paused(f, dag_id="d", target="t"), id="paused"),
        pytest.param(lambda f: decisions.ack_missing(f, dag_id="d", target="t", why="stale"), id="missing"),
        pytest.param(decisions.ack_no_runbook, id="no-runbook"),
    ],
)
def test_a_firing_alerts_ack_carries_the_incident_and_its_buttons(build: Any) -> None:
    message = build(facts_for({"severity": "critical"}))

    [block] = actions_of(message)
    assert block["block_id"] == buttons.BLOCK_ID
    pressed = [(e["text"]["text"], buttons.decode_value(e["value"])) for e in block["elements"]]
    assert pressed == [
        ("Acknowledge", (buttons.INCIDENT_ACK, {"i": INCIDENT})),
        ("Silence 1h", (buttons.SILENCE, {"i": INCIDENT, "h": 1})),
        ("Silence 4h", (buttons.SILENCE, {"i": INCIDENT, "h": 4})),
    ]
    assert f"`{INCIDENT}`" in json.dumps(message["blocks"])


def test_a_resolved_notice_has_no_buttons_but_names_the_incident() -> None:
    facts = facts_for({}, status="resolved", endsAt="2026-11-22T03:30:00Z")
    message = decisions.resolved_notice(facts, dag_id="d", run_id="r", run_link="", state="running")
    assert actions_of(message) == []
    assert INCIDENT in json.dumps(message["blocks"])


def test_hostile_labels_and_a_huge_alert_keep_the_buttons_within_slacks_limits() -> None:
    labels = {f"l{i}": "<!channel> *x* " + "y" * 900 for i in range(60)}
    facts = facts_for(labels, annotations={f"a{i}": "<@U123> " + "z" * 2000 for i in range(40)})

    message = decisions.ack_no_runbook(facts)

    assert message == slack.fit_message(message)
    assert len(message["blocks"]) <= slack.MAX_BLOCKS
    assert len(json.dumps(message)) < 50_000
    [block] = actions_of(message)
    assert [e["text"]["text"] for e in block["elements"]] == ["Acknowledge", "Silence 1h", "Silence 4h"]
    assert "<!channel>" not in json.dumps(message)
