"""action_result: an SOP's irreversible call and its result (done / not done / failed, error masked) on the
incident's timeline, without ever failing or changing the action it wraps."""

from __future__ import annotations

from typing import Any

import pytest

from tests.incidents.conftest import alert
from toilless.incidents import events as ev


@pytest.fixture
def in_task(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A running task's context whose run conf carries an alert (what the intake starts)."""
    from toilless.incidents import recorder

    conf_alert = alert(fingerprint="a1b2c3d4e5")
    context = {"params": {"alert": conf_alert}, "run_id": "alert__run-1"}
    monkeypatch.setattr(recorder, "_current_context", lambda: context)
    return conf_alert


def actions(engine: Any, incident_id: str) -> list[dict[str, Any]]:
    from toilless.incidents import store

    return [item for item in store.timeline(engine, incident_id) if item["kind"] == ev.ACTION]


def test_a_done_action_is_on_the_runs_incident(incident_db: Any, in_task: dict[str, Any]) -> None:
    from toilless.incidents import action_result

    with action_result("restart", "deployment/orders"):
        value = 42
    assert value == 42
    [event] = actions(incident_db, ev.incident_of_alert(in_task))
    assert event["summary"] == "restart on deployment/orders: done"
    assert event["data"]["result"] == "done"
    assert event["data"]["run_id"] == "alert__run-1"


def test_a_failed_action_is_recorded_masked_and_still_raises(incident_db: Any, in_task: dict[str, Any]) -> None:
    from toilless.incidents import action_result

    with pytest.raises(ConnectionError, match="password=hunter2"), action_result("terminate", "pid 7"):
        raise ConnectionError("refused: postgresql://u:pw@db/x password=hunter2")
    [event] = actions(incident_db, ev.incident_of_alert(in_task))
    assert event["summary"].startswith("terminate on pid 7: failed (ConnectionError: refused")
    assert "hunter2" not in event["summary"]
    assert event["data"]["result"] == "failed"


def test_a_call_that_answers_no_is_recorded_not_done(incident_db: Any, in_task: dict[str, Any]) -> None:
    from toilless.incidents import action_result

    with action_result("cancel", "replica-1 pid 9") as act:
        done = act.check(False, "the query changed right before")
    assert done is False
    [event] = actions(incident_db, ev.incident_of_alert(in_task))
    assert event["summary"] == "cancel on replica-1 pid 9: not done (the query changed right before)"


def test_outside_a_task_the_incident_is_named(incident_db: Any) -> None:
    from toilless.incidents import action_result

    with action_result("silence 1h", "DiskFull", incident_id="abc123", actor="alice"):
        pass
    [event] = actions(incident_db, "abc123")
    assert event["actor"] == "alice"


def test_recording_never_fails_the_action(monkeypatch: pytest.MonkeyPatch, in_task: dict[str, Any]) -> None:
    from toilless.incidents import action_result, recorder

    def broken(*_: Any, **__: Any) -> bool:
        raise RuntimeError("recorder bug")

    monkeypatch.setattr(recorder, "record_from_context", broken)
    with action_result("restart", "x"):
        ran = True
    assert ran


def test_a_run_without_an_alert_records_nothing(incident_db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from toilless.incidents import action_result, recorder, store

    monkeypatch.setattr(recorder, "_current_context", lambda: {"params": {}, "run_id": "manual__1"})
    with action_result("restart", "x"):
        pass
    assert store.open_incidents(incident_db) == []
