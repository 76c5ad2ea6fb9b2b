"""Block Kit buttons for messages that ask a person something, and the update that replaces them. Pure.

A button's ``value`` says what it answers (``kind`` plus the question's reference) as compact JSON; Slack returns
it unchanged in the signed interaction payload. It is not a secret and not a credential: the endpoint still checks
who pressed, whether that person may answer, and whether the question is still open.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from toilless.common import slack

#: ``block_id`` of the actions block this module builds (the update removes exactly these blocks).
BLOCK_ID = "toilless_actions"
ACTION_PREFIX = "toilless:"
#: Slack's limits: value 2000 characters, button text 75, action_id 255, 25 elements per actions block.
MAX_VALUE_CHARS = 2000
MAX_BUTTON_TEXT = 75
MAX_ELEMENTS = 25
#: Slack user ids (U..., W... for Enterprise Grid): the only outside value shown as a mention.
SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}\Z")

HITL = "hitl"
INCIDENT_ACK = "incident_ack"
SILENCE = "silence"


class BadButton(ValueError):
    """A button value this module did not build (or one cut by a limit)."""


@dataclass(frozen=True)
class Button:
    label: str
    kind: str
    ref: Mapping[str, Any]
    style: str | None = None  # "primary" (green) or "danger" (red)
    confirm: Mapping[str, str] | None = None


def encode_value(kind: str, ref: Mapping[str, Any]) -> str:
    value = json.dumps({"k": kind, **ref}, separators=(",", ":"), sort_keys=True, ensure_ascii=True)
    if len(value) > MAX_VALUE_CHARS:
        raise BadButton(f"button value of {len(value)} characters exceeds Slack's {MAX_VALUE_CHARS}")
    return value


def decode_value(value: Any) -> tuple[str, dict[str, Any]]:
    """``(kind, ref)`` from a pressed button's value; :class:`BadButton` for anything else."""
    if not isinstance(value, str) or len(value) > MAX_VALUE_CHARS:
        raise BadButton("button value missing or too long")
    try:
        data = json.loads(value)
    except json.JSONDecodeError as err:
        raise BadButton("button value is not JSON") from err
    if not isinstance(data, dict) or not isinstance(data.get("k"), str):
        raise BadButton("button value has no kind")
    kind = data.pop("k")
    return kind, data


def actions_block(buttons: Sequence[Button]) -> dict[str, Any]:
    """One ``actions`` block with the buttons (at most 25, Slack's limit)."""
    if not buttons or len(buttons) > MAX_ELEMENTS:
        raise BadButton(f"an actions block holds 1 to {MAX_ELEMENTS} buttons, not {len(buttons)}")
    elements = []
    for index, button in enumerate(buttons):
        element: dict[str, Any] = {
            "type": "button",
            "action_id": f"{ACTION_PREFIX}{button.kind}:{index}",
            "text": {"type": "plain_text", "text": slack.plain(button.label, MAX_BUTTON_TEXT), "emoji": True},
            "value": encode_value(button.kind, button.ref),
        }
        if button.style:
            element["style"] = button.style
        if button.confirm:
            element["confirm"] = _confirm(**button.confirm)
        elements.append(element)
    return {"type": "actions", "block_id": BLOCK_ID, "elements": elements}


def hitl_ref(dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int) -> dict[str, Any]:
    """What a HITL button points at: the task instance and the try that asked (a later try asks anew)."""
    return {"d": dag_id, "r": run_id, "t": task_id, "m": int(map_index), "n": int(try_number)}


def hitl_buttons(ref: Mapping[str, Any], options: Iterable[str], *, subject: str = "") -> list[Button]:
    """One button per HITL option. ``Approve`` is green and asks for a confirmation (the change may be permanent),
    ``Reject`` is red; any other option is a plain button."""
    buttons = []
    for option in options:
        style = {"Approve": "primary", "Reject": "danger"}.get(option)
        confirm = None
        if option == "Approve":
            confirm = {
                "title": "Approve?",
                "text": f"Approve: {subject}" if subject else "Approve this request?",
                "confirm": "Approve",
                "deny": "Cancel",
            }
        buttons.append(Button(label=option, kind=HITL, ref={**ref, "o": option}, style=style, confirm=confirm))
    return buttons


def incident_buttons(incident_id: str, *, alertmanager: bool) -> list[Button]:
    """Acknowledge, plus Silence 1h / 4h when the alert came from Alertmanager (a silence is Alertmanager's)."""
    buttons = [Button(label="Acknowledge", kind=INCIDENT_ACK, ref={"i": incident_id}, style="primary")]
    if alertmanager:
        buttons += [
            Button(label="Silence 1h", kind=SILENCE, ref={"i": incident_id, "h": 1}),
            Button(label="Silence 4h", kind=SILENCE, ref={"i": incident_id, "h": 4}),
        ]
    return buttons


def mention(slack_user_id: str) -> str:
    """``<@U123>`` for a well-formed Slack user id, else the id as escaped text (never a crafted mention)."""
    if SLACK_USER_ID.match(slack_user_id or ""):
        return f"<@{slack_user_id}>"
    return slack.escape(slack_user_id, 40)


def answered_message(original: Mapping[str, Any] | None, *, line: str, fallback_text: str = "") -> dict[str, Any]:
    """The original message without its buttons, with ``line`` (mrkdwn built from escaped parts) added at the end.

    ``original`` is the ``message`` of the interaction payload (Slack's copy of what was posted); without it the
    update is the line alone.
    """
    blocks = [
        block
        for block in (original or {}).get("blocks") or []
        if isinstance(block, dict) and not (block.get("type") == "actions" and block.get("block_id") == BLOCK_ID)
    ]
    blocks.append(slack.context(line))
    text = (original or {}).get("text") or fallback_text
    text = f"{text}\n{line}" if text else line
    return slack.fit_message({"text": text, "blocks": blocks})


def _confirm(*, title: str, text: str, confirm: str, deny: str) -> dict[str, Any]:
    """Slack's confirmation dialog (title 100, text 300, buttons 30 characters; plain text, never parsed)."""
    return {
        "title": {"type": "plain_text", "text": slack.plain(title, 100)},
        "text": {"type": "plain_text", "text": slack.plain(text, 300)},
        "confirm": {"type": "plain_text", "text": slack.plain(confirm, 30)},
        "deny": {"type": "plain_text", "text": slack.plain(deny, 30)},
    }
