"""One incident end to end, in process: an alert through the intake starts the runbook; inside the run the gate
allows an action, a person approves, the action is done and reported; the alert resolves; the post-mortem lands in
the fake GitHub once, with that timeline in order and its actors. (The same path on a running Airflow is not tested
here: see the report of issue 18.)"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.fixtures.alert_intake import make_alert, make_payload
from toilless.incidents import events as ev

REPO = "example-org/infrastructure"


def test_alert_to_postmortem(
    intake: Any,
    incident_db: Any,
    fake_github: Any,
    slack_sink: Any,
    set_connection: Callable[[str, dict[str, Any]], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from toilless.common.gate import GatePolicy, check_action
    from toilless.common.reporting import post_message
    from toilless.incidents import record_from_context, recorder, store
    from toilless.sops.postmortem_draft import steps

    set_connection("github_incidents", fake_github.connection())
    fired = make_alert(fingerprint="e2e0e2e0e2e0", instance="db-9", environment="prod", severity="critical")
    intake.post_decided(make_payload(fired))
    [(run_id, conf, _)] = [run for run in intake.runs() if "db-9" in run[0]]

    # Inside the run: what the runbook's tasks do, with the run's own context.
    context = {"params": {"alert": conf["alert"]}, "run_id": run_id, "dag_run": None}
    monkeypatch.setattr(recorder, "_current_context", lambda: context)
    verdict = check_action("restart", "db-9", now=datetime.now(UTC), policy=GatePolicy())
    assert verdict.allowed
    recorder.approval(context, {"chosen_options": ["Approve"], "responded_by_user": {"id": "7", "name": "bob"}})
    record_from_context(ev.ACTION, summary="restarted db-9: ok", data={"result": "ok"})
    post_message("ops", "restarted db-9")
    monkeypatch.setattr(recorder, "_current_context", lambda: None)

    resolved = dict(fired, status="resolved")
    intake.post_decided(make_payload(resolved))

    incident_id = ev.incident_key("e2e0e2e0e2e0", fired["startsAt"])
    timeline = store.timeline(incident_db, incident_id)
    assert [(item["kind"], item["actor"]) for item in timeline] == [
        ("alert_received", "alertmanager"),
        ("severity_set", "toilless"),
        ("runbook_started", "toilless"),
        ("gate_verdict", "toilless"),
        ("approval", "bob"),
        ("action", "toilless"),
        ("message_sent", "toilless"),
        ("alert_resolved", "alertmanager"),
    ]
    assert steps.choose_incidents({}) == [incident_id]  # a resolved P0: drafted automatically
    steps.file_drafts([incident_id], dry_run=False)
    steps.file_drafts([*steps.choose_incidents({}), incident_id], dry_run=False)  # the next run, and a manual one
    [issue] = fake_github.issues(REPO)
    body = issue["body"]
    order = [
        body.index(kind) for kind in ("alert\\_received", "gate\\_verdict", "approval", "action", "alert\\_resolved")
    ]
    assert order == sorted(order)
    assert "👤 bob" in body
    assert "restarted db-9: ok" in body.split("## Resolution")[1]
