"""The sandbox loop without Airflow: the sink records buttons and applies updates; the press CLI finds the newest
button still showing and signs the request as Slack would."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import requests

from toilless.slack_actions import buttons
from toilless.slack_actions.press import newest_with_button, payload_for, signed_request
from toilless.slack_actions.signing import verify

REF = buttons.hitl_ref("d", "r", "request_approval", -1, 1)


def post(sink, channel: str, text: str) -> dict:
    block = buttons.actions_block(buttons.hitl_buttons(REF, ["Approve", "Reject"]))
    requests.post(sink.webhook_url(channel), json={"text": text, "blocks": [block]}, timeout=10).raise_for_status()
    return sink.messages(channel)[-1]


def test_sink_records_buttons_and_applies_chat_update(slack_sink) -> None:
    message = post(slack_sink, "urgent", "Approval needed")
    assert [b["label"] for b in slack_sink.buttons("urgent")] == ["Approve", "Reject"]
    assert slack_sink.buttons()[0]["ts"] == message["ts"]

    answer = requests.post(
        f"{slack_sink.url}/api/chat.update",
        json={"channel": "urgent", "ts": message["ts"], "text": "Approved by alice", "blocks": []},
        timeout=10,
    ).json()

    assert answer["ok"] is True
    assert slack_sink.message(message["ts"])["text"] == "Approved by alice"
    assert slack_sink.buttons("urgent") == []
    missing = requests.post(f"{slack_sink.url}/api/chat.update", json={"ts": "0.1", "text": "x"}, timeout=10).json()
    assert missing == {"ok": False, "error": "message_not_found"}


def test_newest_message_still_showing_the_button_is_pressed(slack_sink) -> None:
    older = post(slack_sink, "urgent", "first request")
    newer = post(slack_sink, "urgent", "second request")
    requests.post(
        f"{slack_sink.url}/response/{newer['ts']}",
        json={"replace_original": True, "text": "Rejected by bob", "blocks": []},
        timeout=10,
    ).raise_for_status()
    lines = (
        [json.loads(line) for line in slack_sink.jsonl_path.read_text().splitlines()] if slack_sink.jsonl_path else None
    )
    found = newest_with_button(lines if lines is not None else slack_sink.messages(), "Approve")
    assert found is not None
    assert found[0]["ts"] == older["ts"]


def test_signed_request_is_what_slack_sends() -> None:
    button = {"label": "Approve", "action_id": "toilless:hitl:0", "value": buttons.encode_value("hitl", REF)}
    payload = payload_for(button, message={"ts": "1.2", "text": "t"}, channel="C1", user_id="U0ALICE")
    body, headers = signed_request("s3cret", payload, timestamp=1_700_000_000)

    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    verify(
        secret="s3cret",
        timestamp=headers["X-Slack-Request-Timestamp"],
        signature=headers["X-Slack-Signature"],
        body=body,
        now=1_700_000_010,
    )
    sent = json.loads(parse_qs(body.decode())["payload"][0])
    assert sent["type"] == "block_actions"
    assert sent["container"] == {"type": "message", "message_ts": "1.2", "channel_id": "C1", "is_ephemeral": False}
    assert sent["actions"][0]["value"] == button["value"]
