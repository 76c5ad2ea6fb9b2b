"""A P0/P1 incident's resolve starts its post-mortem draft at once (issue 18: "automatically when a P0/P1 incident
resolves"), not at the next ten-minute tick; other severities, open incidents and drafted ones start nothing; a
repeated resolve finds the run; a busy database is retried; nothing here raises into the intake."""

from __future__ import annotations

import queue
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from toilless.incidents import autodraft
from toilless.incidents import events as ev

SETTINGS = {"postmortem": {"auto_severities": ["P0", "P1"]}}
STARTS_AT = (datetime.now(UTC) - timedelta(minutes=30)).isoformat().replace("+00:00", "Z")


def decision(status: str, fingerprint: str = "cafe0001", severity: str = "P0") -> tuple[Any, Any]:
    """One intake (plan, outcome) pair as the intake's drain hands them over."""
    alert = SimpleNamespace(
        fingerprint=fingerprint,
        starts_at_utc=STARTS_AT,
        ends_at_utc=datetime.now(UTC).isoformat() if status == "resolved" else None,
        alertname="RDSLowStorage",
        labels={"dbinstance_identifier": "orders-db", "severity": "critical"},
        annotations={"summary": "low storage"},
    )
    facts = SimpleNamespace(priority=SimpleNamespace(code=severity), summary="low storage", environment="prod")
    plan = SimpleNamespace(alert=alert, facts=facts, channel="urgent")
    outcome = SimpleNamespace(
        status=status, detail="", dag_id="rds_storage_guard", run_id="alert__r1", target="orders-db"
    )
    return plan, outcome


def test_a_resolved_incident_is_handed_to_the_draft_starter(incident_db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from toilless.incidents import intake

    requested: list[list[str]] = []
    monkeypatch.setattr(autodraft, "request_drafts", lambda ids: requested.append(list(ids)))
    plan, fired = decision("started")
    intake.intake_decided([plan], [fired])
    assert requested == []  # firing: nothing to draft yet

    _, resolved = decision("resolved")
    intake.intake_decided([plan], [resolved])

    assert requested == [[ev.incident_key("cafe0001", STARTS_AT)]]


@pytest.mark.parametrize(
    ("severity", "resolve", "drafted", "expected"),
    [
        pytest.param("P0", True, False, "started", id="resolved-P0"),
        pytest.param("P1", True, False, "started", id="resolved-P1"),
        pytest.param("P2", True, False, "not due", id="P2-waits-for-a-person"),
        pytest.param("P0", False, False, "not due", id="still-open"),
        pytest.param("P0", True, True, "not due", id="already-drafted"),
    ],
)
def test_only_resolved_automatic_severities_without_a_draft_start_a_run(
    incident_db: Any, severity: str, resolve: bool, drafted: bool, expected: str
) -> None:
    from toilless.incidents import intake, recorder

    plan, fired = decision("started", severity=severity)
    recorder.record_events(intake.events_for(plan, fired))
    if resolve:
        recorder.record_events(intake.events_for(plan, decision("resolved")[1]))
    incident_id = ev.incident_key("cafe0001", STARTS_AT)
    if drafted:
        recorder.record(ev.POSTMORTEM_FILED, incident_id=incident_id, data={"url": "https://gh/1"}, dedupe="pm")
    started: list[tuple[str, str, dict[str, Any]]] = []

    def trigger(dag_id: str, run_id: str, conf: dict[str, Any]) -> bool:
        started.append((dag_id, run_id, conf))
        return True

    assert autodraft.start_draft(incident_id, trigger=trigger, settings=SETTINGS) == expected
    if expected == "started":
        assert started == [("postmortem_draft", f"postmortem__{incident_id}", {"incident_id": incident_id})]
    else:
        assert started == []


def resolved_p0(incident_db: Any) -> str:
    from toilless.incidents import intake, recorder

    plan, fired = decision("started")
    recorder.record_events(intake.events_for(plan, fired) + intake.events_for(plan, decision("resolved")[1]))
    return ev.incident_key("cafe0001", STARTS_AT)


def test_a_repeated_resolve_finds_the_run_and_starts_nothing(incident_db: Any) -> None:
    incident_id = resolved_p0(incident_db)
    existing = {f"postmortem__{incident_id}"}
    assert autodraft.start_draft(incident_id, trigger=lambda d, r, c: r not in existing, settings=SETTINGS) == (
        "already started"
    )


def test_a_busy_database_is_retried_then_left_to_the_schedule(incident_db: Any) -> None:
    incident_id = resolved_p0(incident_db)
    calls: list[str] = []
    pauses: list[float] = []

    def locked_twice(dag_id: str, run_id: str, conf: dict[str, Any]) -> bool:
        calls.append(run_id)
        if len(calls) <= 2:
            raise RuntimeError("database is locked")
        return True

    assert autodraft.start_draft(incident_id, trigger=locked_twice, settings=SETTINGS, pause=pauses.append) == (
        "started"
    )
    assert len(calls) == 3
    assert pauses == [1.0, 2.0]

    def always_locked(dag_id: str, run_id: str, conf: dict[str, Any]) -> bool:
        raise RuntimeError("database is locked")

    assert (
        autodraft.start_draft(incident_id, trigger=always_locked, settings=SETTINGS, pause=lambda _: None) == "failed"
    )


def test_requesting_drafts_never_raises_into_the_intake(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise RuntimeError("no threads left")

    pending: queue.Queue[str] = queue.Queue()  # not the module's: a worker another test started may be reading it
    monkeypatch.setattr(autodraft, "_pending", pending)
    monkeypatch.setattr(autodraft, "_ensure_worker", broken)
    autodraft.request_drafts(["abc", "abc"])  # logged, not raised
    assert [pending.get_nowait() for _ in range(pending.qsize())] == ["abc"]


def test_the_background_worker_starts_each_requested_draft_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    seen: list[str] = []
    done = threading.Event()

    def start_draft(incident_id: str) -> str:
        seen.append(incident_id)
        if len(seen) == 2:
            done.set()
        return "started"

    monkeypatch.setattr(autodraft, "_pending", queue.Queue())
    monkeypatch.setattr(autodraft, "_worker", [])
    monkeypatch.setattr(autodraft, "start_draft", start_draft)

    autodraft.request_drafts(["one", "two", "one"])  # returns at once: the intake's transaction is still open

    assert done.wait(timeout=10)
    assert seen == ["one", "two"]
    assert autodraft._worker[0].daemon
