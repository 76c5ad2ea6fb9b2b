"""Once per incident: a retried silence_noise creates no second silence; the silence list is durable and a silence
can be expired early through Alertmanager's API."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from toilless.sops.triage_alert import steps

pytestmark = pytest.mark.integration


@pytest.fixture
def state(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The run-state Variables as a dict, JSON round trip as the Variable keeps them (no task context here)."""
    store: dict[str, Any] = {}
    monkeypatch.setattr(steps, "read_state", lambda key: json.loads(store[key]) if key in store else {})
    monkeypatch.setattr(steps, "write_state", lambda key, value: store.__setitem__(key, json.dumps(value)))
    return store


@pytest.fixture
def settings(
    state: dict[str, Any], alertmanager_server: Any, set_connection: Callable[[str, dict[str, Any]], None]
) -> dict[str, Any]:
    set_connection("alertmanager_default", {"conn_type": "http", "host": alertmanager_server.url})
    service = f"svc-{uuid.uuid4().hex[:8]}"
    return {
        **steps.load_config(steps.DAG_ID),
        "dry_run": False,
        "notes": [],
        "rule": "service-5xx",
        "respect_maintenance_window": False,
        "alert": {"alertname": "Service5xx", "labels": {"alertname": "Service5xx", "service": service}},
        "triage": {"rule": "service-5xx"},
    }


NOISE = {"verdict": "noise", "reason": "1 in the window, at most 1: noise, acknowledged"}


def held(alertmanager_server: Any, service: str) -> list[dict[str, Any]]:
    return [
        s
        for s in alertmanager_server.silences()
        if s["status"]["state"] == "active" and any(m["value"] == service for m in s["matchers"])
    ]


def test_a_retried_silence_step_creates_no_second_silence(settings: dict[str, Any], alertmanager_server: Any) -> None:
    service = settings["alert"]["labels"]["service"]
    first = steps.silence_noise(settings, NOISE, "alert__Service5xx__run-1")
    again = steps.silence_noise(settings, NOISE, "alert__Service5xx__run-1")

    assert first["silenced"]
    assert again["silenced"]
    assert again["silence_id"] == first["silence_id"]
    assert again["reused"] is True
    assert [s["id"] for s in held(alertmanager_server, service)] == [first["silence_id"]]
    # Another incident of the same alert is silenced on its own.
    other = steps.silence_noise(settings, NOISE, "alert__Service5xx__run-2")
    assert other["silence_id"] != first["silence_id"]


def test_the_list_names_each_silence_and_one_can_be_expired_early(
    settings: dict[str, Any], alertmanager_server: Any
) -> None:
    service = settings["alert"]["labels"]["service"]
    created = steps.silence_noise(settings, NOISE, f"alert__Service5xx__{service}")
    silence_id = created["silence_id"]
    assert silence_id in steps.read_state(steps.SILENCES_STATE_KEY)
    [row] = [row for row in steps.list_silences() if row["id"] == silence_id]
    assert row["active"] is True
    assert row["matchers"] == {"alertname": "Service5xx", "service": service}

    assert steps.expire_silence(silence_id)["expired"] is True
    assert held(alertmanager_server, service) == []
    [row] = [row for row in steps.list_silences() if row["id"] == silence_id]
    assert row["active"] is False
    # Expiring again is harmless; a silence Toilless did not create is refused.
    assert steps.expire_silence(silence_id)["was"] == "expired"
    with pytest.raises(steps.InvalidInput, match="not created by Toilless"):
        steps.expire_silence(str(uuid.uuid4()))


def test_maintenance_window_and_allow_silence_off_silence_nothing(
    settings: dict[str, Any], alertmanager_server: Any
) -> None:
    service = settings["alert"]["labels"]["service"]
    off = steps.silence_noise({**settings, "allow_silence": False}, NOISE, "alert__x__off")
    assert off == {"silenced": False, "reason": "silencing is switched off (allow_silence)"}
    always = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00", "end": "23:59"}
    during = steps.silence_noise(
        {**settings, "respect_maintenance_window": True, "maintenance_window": always}, NOISE, "alert__x__mw"
    )
    assert during["silenced"] is False
    assert "maintenance" in during["reason"]
    assert held(alertmanager_server, service) == []
