"""The recorder: events land on the right incident in order; a lost database loses no event (outbox) and never
stops the caller; retries record nothing twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.incidents.conftest import alert
from toilless.incidents import events as ev


def test_events_of_one_firing_share_an_incident_and_come_back_in_order(incident_db: Any) -> None:
    from toilless.incidents import record, store

    start = datetime.now(UTC) - timedelta(hours=1)
    conf_alert = alert(severity="critical")
    assert record(
        ev.ALERT_RECEIVED,
        alert=conf_alert,
        actor="alertmanager",
        at=start,
        data={"severity": "P0", "alertname": "DiskFull"},
    )
    assert record(ev.GATE_VERDICT, alert=conf_alert, at=start + timedelta(minutes=2), summary="allowed")
    assert record(
        ev.ACKNOWLEDGED, alert=conf_alert, actor="alice", at=start + timedelta(minutes=1), data={"via": "rest"}
    )
    incident_id = ev.incident_of_alert(conf_alert)
    kinds = [(item["kind"], item["actor"]) for item in store.timeline(incident_db, incident_id)]
    assert kinds == [("alert_received", "alertmanager"), ("acknowledged", "alice"), ("gate_verdict", "toilless")]
    row = store.get_incident(incident_db, incident_id)
    assert row["severity"] == "P0"
    assert row["acknowledged_by"] == "alice"
    assert row["alertname"] == "DiskFull"


def test_same_alert_in_another_notation_is_the_same_incident() -> None:
    assert ev.incident_key("abc", "2026-11-24T11:58:00Z") == ev.incident_key("abc", "2026-11-24T12:58:00+01:00")
    assert ev.incident_key("abc", "2026-11-24T11:58:00Z") != ev.incident_key("abd", "2026-11-24T11:58:00Z")


@pytest.mark.parametrize(
    ("kind", "incident_id"),
    [pytest.param("alert_exploded", "abc", id="unknown-kind"), pytest.param(ev.ACTION, "", id="no-incident")],
)
def test_bad_events_are_refused_clearly(kind: str, incident_id: str) -> None:
    with pytest.raises(ev.IncidentError):
        ev.make_event(incident_id, kind)


def test_record_never_raises_on_bad_input(incident_db: Any) -> None:
    from toilless.incidents import record

    assert record("no_such_kind", incident_id="abc") is False
    assert record(ev.ACTION, alert={"fingerprint": ""}) is False


def test_secrets_in_event_text_are_masked(incident_db: Any) -> None:
    from toilless.incidents import record, store

    record(
        ev.ACTION, incident_id="abc1", summary="failed: password=hunter2xyz", data={"token": "xoxb-1234567890-abcdef"}
    )
    [item] = store.timeline(incident_db, "abc1")
    assert "hunter2xyz" not in item["summary"]
    assert "xoxb-1234567890-abcdef" not in str(item["data"])


def test_database_lost_for_a_moment_loses_no_event(
    incident_db: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from toilless.incidents import db, flush_outbox, outbox, record, store

    good = str(incident_db.url)
    # Nothing listens on port 9 of loopback: the write fails at once, like a database that is down.
    monkeypatch.setenv(db.URL_ENV, "postgresql+psycopg2://toilless:x@127.0.0.1:9/incidents")
    db.reset()
    assert record(ev.ACTION, incident_id="beef01", summary="restarted", dedupe="restart") is False
    assert record(ev.MESSAGE_SENT, incident_id="beef01", summary="told ops") is False
    assert outbox.pending() == 2
    monkeypatch.setenv(db.URL_ENV, good)
    db.reset()
    counts = flush_outbox()
    assert counts["written"] == 2
    assert counts["left"] == 0
    assert outbox.pending() == 0
    assert [item["kind"] for item in store.timeline(db.engine(), "beef01")] == ["action", "message_sent"]
    # The same fact again (a retried task): stored once.
    record(ev.ACTION, incident_id="beef01", summary="restarted", dedupe="restart")
    assert len(store.timeline(db.engine(), "beef01")) == 2


def test_outbox_keeps_events_when_the_retry_fails_too(incident_db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from toilless.incidents import db, flush_outbox, outbox, record

    monkeypatch.setenv(db.URL_ENV, "postgresql+psycopg2://toilless:x@127.0.0.1:9/incidents")
    db.reset()
    record(ev.ACTION, incident_id="beef02")
    counts = flush_outbox()
    assert counts["left"] == 1
    assert outbox.pending() == 1


def test_gate_verdict_is_recorded_and_the_gate_still_answers_when_the_database_is_down(
    incident_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from toilless.common.gate import GatePolicy, check_action
    from toilless.incidents import db, flush_outbox, recorder, store

    run_alert = alert(fingerprint="6a7e")
    context = {"params": {"alert": run_alert}, "run_id": "alert__x", "dag_run": None}
    monkeypatch.setattr(recorder, "_current_context", lambda: context)
    good = str(incident_db.url)
    monkeypatch.setenv(db.URL_ENV, "postgresql+psycopg2://toilless:x@127.0.0.1:9/incidents")
    db.reset()
    verdict = check_action("restart", "deploy/orders", now=datetime.now(UTC), policy=GatePolicy())
    assert verdict.allowed  # the runbook goes on
    monkeypatch.setenv(db.URL_ENV, good)
    db.reset()
    flush_outbox()
    [item] = store.timeline(db.engine(), ev.incident_of_alert(run_alert))
    assert item["kind"] == "gate_verdict"
    assert item["data"]["allowed"] is True
    assert item["data"]["run_id"] == "alert__x"


def test_gate_outside_a_run_with_an_alert_records_nothing(incident_db: Any) -> None:
    from sqlalchemy import text

    from toilless.common.gate import GatePolicy, check_action
    from toilless.incidents import store

    check_action("restart", "deploy/orders", now=datetime.now(UTC), policy=GatePolicy(dry_run=True))
    store.ensure_tables(incident_db)
    with incident_db.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM toilless_incident_event")).scalar_one() == 0


def test_an_append_racing_a_drain_is_not_lost(incident_db: Any, tmp_path: Path) -> None:
    """A drain claims the file by renaming it; an append afterwards goes to a fresh file, not the claimed one."""
    from toilless.incidents import outbox

    directory = tmp_path / "race"
    outbox.append([ev.make_event("aa", ev.ACTION)], directory)
    seen: list[int] = []

    def write(chunk: list[ev.Event]) -> int:
        outbox.append([ev.make_event("aa", ev.ACTION)], directory)  # arrives while the drain holds the file
        seen.append(len(chunk))
        return len(chunk)

    outbox.drain(write, directory)
    assert seen == [1]
    assert outbox.pending(directory) == 1


def test_a_drain_that_died_mid_way_leaves_nothing_behind(incident_db: Any, tmp_path: Path) -> None:
    """A drain killed after claiming a file (renamed, not yet deleted): the next drain writes its events."""
    from toilless.incidents import outbox

    directory = tmp_path / "crashed"
    outbox.append([ev.make_event("ab", ev.ACTION, dedupe="one")], directory)
    [path] = directory.glob("*.jsonl")
    path.rename(path.with_name(f"{path.name}.draining-999999999-deadbeef"))  # no such process
    written: list[str] = []
    counts = outbox.drain(lambda chunk: written.extend(item.event_id for item in chunk) or len(chunk), directory)
    assert counts["written"] == 1
    assert len(written) == 1
    assert outbox.pending(directory) == 0


def test_a_runs_report_is_recorded_as_message_and_finish(
    incident_db: Any, slack_sink: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from toilless.common.reporting import send_report
    from toilless.incidents import recorder, store

    run_alert = alert(fingerprint="5e4d")
    context = {"params": {"alert": run_alert}, "run_id": "alert__r", "dag": SimpleNamespace(dag_id="redis_memory")}
    monkeypatch.setattr(recorder, "_current_context", lambda: context)  # what Airflow gives inside the task
    send_report(context, channel="ops", title="Redis memory", lines=["all fine"])
    kinds = [item["kind"] for item in store.timeline(incident_db, ev.incident_of_alert(run_alert))]
    assert kinds == ["message_sent", "runbook_finished"]
