"""Triage's silence of noise is an action with its result on the incident's timeline (incidents.action_result)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.incidents.conftest import alert, incident_db  # noqa: F401 - the fixture
from tests.sops.triage_alert.test_once import NOISE, settings, state  # noqa: F401 - fixtures
from toilless.incidents import events as ev
from toilless.sops.triage_alert import steps

pytestmark = pytest.mark.integration


def test_the_silence_of_noise_is_on_the_timeline_once(
    settings: dict[str, Any],  # noqa: F811
    incident_db: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from toilless.incidents import recorder, store

    conf_alert = alert(fingerprint="7e1e7e1e", **settings["alert"]["labels"])
    monkeypatch.setattr(recorder, "_current_context", lambda: {"params": {"alert": conf_alert}, "run_id": "r"})
    first = steps.silence_noise(settings, NOISE, "alert__Service5xx__timeline")
    steps.silence_noise(settings, NOISE, "alert__Service5xx__timeline")  # a retry reuses the silence

    events = [e for e in store.timeline(incident_db, ev.incident_of_alert(conf_alert)) if e["kind"] == ev.ACTION]
    assert [e["summary"] for e in events] == [f"silence {first['minutes']:g} min on Service5xx: done"]
