"""The buttons on approval requests and incident acks, and the message after an answer."""

from __future__ import annotations

import json

import pytest

from toilless.common.slack import limit_problems
from toilless.notifiers.slack_approval import approval_message
from toilless.slack_actions import buttons
from toilless.slack_actions.decisions import already_decided_text, decided_line

REF = buttons.hitl_ref("rds_storage_guard", "manual__2026-12-01T00:00:00+00:00", "request_approval", -1, 1)
URL = "http://127.0.0.1:8080/dags/d/runs/r/required_actions"


def approval_with_buttons(subject: str = "Grow RDS storage (permanent): db-1", body: str = "") -> dict:
    block = buttons.actions_block(buttons.hitl_buttons(REF, ["Approve", "Reject"], subject=subject))
    body = body or "**permanent** 100 GiB -> **146 GiB**, +5.29 USD/month"
    return approval_message(subject=subject, body=body, url=URL, link_hosts={"127.0.0.1"}, actions=block)


def test_approval_request_carries_approve_and_reject_with_what_changes() -> None:
    message = approval_with_buttons()
    actions = [block for block in message["blocks"] if block["type"] == "actions"]
    assert len(actions) == 1
    labels = [element["text"]["text"] for element in actions[0]["elements"]]
    assert labels == ["Approve", "Reject"]
    approve, reject = actions[0]["elements"]
    assert approve["style"] == "primary"
    assert reject["style"] == "danger"
    # Approve asks again, naming what is approved; the message still says what changes, permanence and cost.
    assert "permanent" in approve["confirm"]["text"]["text"]
    assert "permanent" in message["text"]
    assert "+5.29 USD/month" in message["text"]
    assert buttons.decode_value(approve["value"]) == ("hitl", {**REF, "o": "Approve"})
    assert limit_problems(message) == []


def test_buttons_survive_a_huge_body() -> None:
    """The body is cut to fit Slack's limits; the buttons sit above what is cut."""
    message = approval_with_buttons(body="x" * 900_000)
    assert any(block["type"] == "actions" for block in message["blocks"])
    assert limit_problems(message) == []


@pytest.mark.parametrize(
    ("alertmanager", "labels"),
    [
        pytest.param(True, ["Acknowledge", "Silence 1h", "Silence 4h"], id="from-alertmanager"),
        pytest.param(False, ["Acknowledge"], id="other-source"),
    ],
)
def test_incident_buttons(alertmanager: bool, labels: list[str]) -> None:
    block = buttons.actions_block(buttons.incident_buttons("inc-42", alertmanager=alertmanager))
    assert [element["text"]["text"] for element in block["elements"]] == labels
    kinds = [buttons.decode_value(element["value"])[0] for element in block["elements"]]
    assert kinds[0] == buttons.INCIDENT_ACK
    assert set(kinds[1:]) <= {buttons.SILENCE}


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="none"),
        pytest.param("not json", id="not-json"),
        pytest.param("[1]", id="not-object"),
        pytest.param('{"d": "x"}', id="no-kind"),
        pytest.param('{"k": "hitl", "x": "' + "a" * 2001 + '"}', id="too-long"),
    ],
)
def test_foreign_values_are_refused(value: object) -> None:
    with pytest.raises(buttons.BadButton):
        buttons.decode_value(value)


def test_value_longer_than_slack_allows_is_refused_when_built() -> None:
    with pytest.raises(buttons.BadButton):
        buttons.encode_value("hitl", {"r": "x" * 2100})


def test_answered_message_replaces_the_buttons_with_who_answered_what_and_when() -> None:
    from datetime import UTC, datetime

    original = approval_with_buttons()
    line = decided_line(["Approve"], "alice", datetime(2026, 12, 1, 3, 4, 5, tzinfo=UTC), via_slack="<@U0ALICE>")
    updated = buttons.answered_message(original, line=line)
    assert not any(block["type"] == "actions" for block in updated["blocks"])
    last = updated["blocks"][-1]["elements"][0]["text"]
    assert "*Approved* by alice (<@U0ALICE> in Slack) at 2026-12-01 03:04:05 UTC" in last
    assert limit_problems(updated) == []


def test_texts_for_a_timeout_and_a_hostile_user_name() -> None:
    assert already_decided_text(["Reject"], None, None).startswith("already decided: rejected by timeout")
    line = decided_line(["Reject"], "<!channel> eve", None)
    assert "<!channel>" not in line


@pytest.mark.parametrize(
    ("slack_id", "expected"),
    [
        pytest.param("U0ALICE", "<@U0ALICE>", id="user"),
        pytest.param("W0GRID1", "<@W0GRID1>", id="grid-user"),
        pytest.param("<!channel>", "&lt;!channel&gt;", id="crafted"),
    ],
)
def test_mention_only_for_slack_ids(slack_id: str, expected: str) -> None:
    assert buttons.mention(slack_id) == expected


def test_button_values_are_compact_json() -> None:
    value = buttons.encode_value("hitl", {**REF, "o": "Approve"})
    assert json.loads(value)["k"] == "hitl"
    assert " " not in value


class FakeTaskInstance:
    dag_id, run_id, task_id, map_index, try_number = "rds_storage_guard", "manual__1", "request_approval", -1, 2


class FakeApproval:
    options = ["Approve", "Reject"]


def test_notifier_buttons_name_the_task_instance_and_its_try() -> None:
    from toilless.notifiers.slack_approval import answer_buttons

    block = answer_buttons({"ti": FakeTaskInstance(), "task": FakeApproval()}, "Grow db-1")
    assert block is not None
    values = [buttons.decode_value(element["value"]) for element in block["elements"]]
    assert values == [
        ("hitl", {"d": "rds_storage_guard", "r": "manual__1", "t": "request_approval", "m": -1, "n": 2, "o": option})
        for option in ("Approve", "Reject")
    ]


def test_notifier_buttons_can_be_turned_off(set_variable) -> None:
    from toilless.notifiers.slack_approval import answer_buttons

    set_variable("toilless_slack_actions", {"approval_buttons": False})
    assert answer_buttons({"ti": FakeTaskInstance(), "task": FakeApproval()}, "Grow db-1") is None
