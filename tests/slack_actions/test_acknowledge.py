"""Acknowledge and Silence presses go to their registry entries: the incident store's acknowledge() when it is
installed (built in parallel, toilless.incidents), a clear "not available yet" otherwise. Nothing is stored here."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from tests.slack_actions.conftest import ALICE, MALLORY, SECRET
from toilless.slack_actions import buttons, registry
from toilless.slack_actions.press import payload_for, signed_request


def press_incident(client: Any, label: str, *, user: str = ALICE, alertmanager: bool = True) -> Any:
    block = buttons.actions_block(buttons.incident_buttons("inc-42", alertmanager=alertmanager))
    element = next(e for e in block["elements"] if e["text"]["text"] == label)
    found = {"label": label, "action_id": element["action_id"], "value": element["value"]}
    payload = payload_for(found, message={"ts": "1.2", "blocks": [block]}, channel="C1", user_id=user)
    body, headers = signed_request(SECRET, payload)
    return client.post("/toilless/slack/actions", content=body, headers=headers)


@pytest.fixture
def incident_store(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """A stand-in for toilless.incidents with the agreed function: acknowledge(incident_id, by, via)."""
    calls: list[tuple[str, str, str]] = []
    acked: dict[str, str] = {}

    def acknowledge(incident_id: str, by: str, via: str) -> dict[str, Any]:
        calls.append((incident_id, by, via))
        already = incident_id in acked
        acked.setdefault(incident_id, by)
        return {"acknowledged_by": acked[incident_id], "already": already}

    module = types.ModuleType("toilless.incidents")
    module.acknowledge = acknowledge  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "toilless.incidents", module)
    return calls


def test_acknowledge_calls_the_incident_store_as_the_mapped_user(client, incident_store) -> None:
    first = press_incident(client, "Acknowledge")
    second = press_incident(client, "Acknowledge")

    assert first.status_code == 200
    assert first.json()["outcome"] == "decided"
    assert second.json()["outcome"] == "already_decided"
    assert second.json()["text"].startswith("already acknowledged by alice")
    assert incident_store == [("inc-42", "alice", "slack"), ("inc-42", "alice", "slack")]


def test_acknowledge_by_an_unmapped_user_is_refused(client, incident_store) -> None:
    response = press_incident(client, "Acknowledge", user=MALLORY)
    assert response.status_code == 403
    assert incident_store == []


def test_acknowledge_without_the_incident_store_says_so(client, monkeypatch) -> None:
    monkeypatch.setattr(registry, "INCIDENTS_MODULE", "toilless.no_such_incident_store")
    response = press_incident(client, "Acknowledge")
    assert response.status_code == 503
    assert "not available yet" in response.json()["text"]


def test_silence_is_pluggable(client, monkeypatch) -> None:
    """Silence goes to the alert triage's silence (tests/slack_actions/test_silence.py); without that SOP installed
    it says it is not available; another registered handler replaces it."""
    assert registry.handler_for(buttons.SILENCE) is registry.silence_alert
    monkeypatch.setattr(registry, "SILENCE_MODULE", "toilless.no_such_module")
    assert press_incident(client, "Silence 1h").status_code == 503
    seen: list[dict[str, Any]] = []

    def silence(press: registry.Press) -> Any:
        seen.append(press.ref)
        from toilless.slack_actions.decisions import DECIDED, Outcome

        return Outcome(DECIDED, 200, f"silenced for {press.ref['h']}h", "silenced")

    monkeypatch.setitem(registry._HANDLERS, buttons.SILENCE, silence)
    response = press_incident(client, "Silence 4h")
    assert response.json()["text"] == "silenced for 4h"
    assert seen == [{"i": "inc-42", "h": 4}]


def test_unknown_kind_is_a_400(client) -> None:
    value = buttons.encode_value("format_disk", {"x": 1})
    found = {"label": "x", "action_id": "toilless:format_disk:0", "value": value}
    body, headers = signed_request(SECRET, payload_for(found, message={"ts": "1"}, channel="C1", user_id=ALICE))
    response = client.post("/toilless/slack/actions", content=body, headers=headers)
    assert response.status_code == 400
