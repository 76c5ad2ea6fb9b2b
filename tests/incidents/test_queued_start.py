"""A queued alert whose runbook starts later (its target became free) is on its incident's timeline."""

from __future__ import annotations

from typing import Any

from tests.fixtures.alert_intake import make_alert, make_payload
from toilless.incidents import events as ev


def test_a_queued_alert_that_starts_later_records_runbook_started_once(intake: Any, incident_db: Any) -> None:
    from toilless.incidents import store

    first = make_alert("TestQueueFull", instance="q-7", environment="staging")
    second = make_alert("TestQueueFull", fingerprint="7777777777777777", instance="q-7", environment="staging")
    intake.post_decided(make_payload(first))
    [(first_run, _, _)] = intake.runs()
    queued = intake.post_decided(make_payload(second)).json()["results"][0]
    assert queued["status"] == "queued"
    incident_id = ev.incident_key("7777777777777777", second["startsAt"])
    assert "runbook_started" not in [item["kind"] for item in store.timeline(incident_db, incident_id)]

    intake.set_run_state(first_run, "failed")
    started, _ = intake.deliver()
    intake.deliver()  # a second pass starts nothing and records nothing again

    assert started == 1
    starts = [item for item in store.timeline(incident_db, incident_id) if item["kind"] == "runbook_started"]
    assert len(starts) == 1
    assert starts[0]["data"]["run_id"] == queued["run_id"]
