"""The intake under a storm (issue 12, "The storm under real load"): a delivery of many alerts is one transaction, the
Slack outbox is claimed and removed in batches, and neither changes a decision or posts a message twice."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.alert_intake import TARGET_DAG, IntakeHarness, make_alert, make_payload

pytestmark = pytest.mark.integration


class _Commits:
    """Counts commits on Airflow's engine (what waits for SQLite's single write lock)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *args: Any) -> None:
        self.count += 1


@pytest.fixture
def commits() -> Iterator[_Commits]:
    from airflow import settings
    from sqlalchemy import event

    counter = _Commits()
    event.listen(settings.engine, "commit", counter)
    yield counter
    event.remove(settings.engine, "commit", counter)


def _group(count: int, *, offset: int = 0) -> dict[str, Any]:
    return make_payload(
        *(
            make_alert(fingerprint=f"{offset + n:016x}", instance=f"db-{offset + n}", environment="staging")
            for n in range(count)
        )
    )


def test_a_delivery_of_many_alerts_commits_once(intake: IntakeHarness, commits: _Commits) -> None:
    intake.post_decided(_group(1, offset=100))  # first delivery: tables, DAG cache and settings are warm afterwards
    commits.count = 0

    accepted = intake.post(_group(20))
    accepting = commits.count
    commits.count = 0
    assert intake.service.drain_inbox() == 1
    draining = commits.count

    assert accepted.status_code == 200, accepted.text
    assert intake.service.delivery(accepted.json()["delivery"])["counts"] == {"started": 20}
    assert len(intake.runs()) == 21
    # The HTTP answer: the plan's read session and ONE insert (into the inbox, or on SQLite into the spool).
    assert accepting <= 2, accepting
    # The worker: every decision of the delivery, its runs and its inbox row in one transaction (before the
    # batching: one transaction per alert, 20 commits, each a wait for the write lock while runbooks run).
    spooled = intake.service._spool() is not None  # SQLite: one more, the spool's deliveries moved into the inbox
    assert draining <= 2 + spooled, draining  # the decisions, and one spare


def test_a_race_inside_a_batch_falls_back_to_one_decision_per_alert(intake: IntakeHarness) -> None:
    from toilless.intake import routing
    from toilless.intake.models import Alert

    taken = make_alert(fingerprint="00000000000000aa", instance="db-taken", environment="staging")
    # The run of one alert exists already (a REST client used the same deterministic run id): the batch rolls back
    # and every alert is decided on its own, so the others still start and this one is a duplicate.
    alert = Alert.model_validate(taken)
    route = intake.service.provider.get().routes.match(alert.labels)
    assert route is not None
    run_id = routing.run_id_for(TARGET_DAG, routing.target_of(route, alert), alert)
    intake.post_decided(
        make_payload(make_alert(fingerprint="00000000000000ab", instance="db-other", environment="staging"))
    )
    intake.set_run_state(intake.runs()[0][0], "success")
    _create_run(run_id)

    response = intake.post_decided(make_payload(taken, *_group(3)["alerts"]))

    assert response.status_code == 200, response.text
    assert response.json()["counts"] == {"duplicate": 1, "started": 3}
    assert [run for run in intake.runs() if run[0] == run_id] != []
    assert len(intake.runs()) == 5


def _create_run(run_id: str) -> None:
    from airflow._shared.timezones import timezone
    from airflow.models.dagbag import DBDagBag
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    with create_session() as session:
        dag = DBDagBag(load_op_links=False).get_latest_version_of_dag(TARGET_DAG, session=session)
        dag.create_dagrun(
            run_id=run_id,
            logical_date=None,
            data_interval=None,
            run_after=timezone.utcnow(),
            conf={"instance_ids": ["db-taken"]},
            run_type=DagRunType.MANUAL,
            triggered_by=DagRunTriggeredByType.REST_API,
            state=DagRunState.QUEUED,
            session=session,
        )


def test_outbox_is_posted_in_batches_and_once_by_concurrent_workers(intake: IntakeHarness, commits: _Commits) -> None:
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from toilless.intake.store import outbox
    from toilless.intake.worker import deliver_outbox

    intake.post_decided(_group(30))
    with create_session() as session:
        queued = sorted(session.execute(select(outbox.c.message_json)).scalars().all())
    assert len(queued) == 30
    posted: list[str] = []
    lock = threading.Lock()

    def poster(channel: str, message: dict[str, Any]) -> None:
        with lock:
            posted.append(json.dumps(message))

    commits.count = 0
    workers = [threading.Thread(target=deliver_outbox, args=(poster,)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)

    assert sorted(posted) == queued  # every message once, none twice
    assert intake.outbox_size() == 0
    # Before: three write transactions per message (claim, post, delete): 90 for 30 messages.
    assert commits.count <= 3 * 4, commits.count


def test_a_drain_transaction_records_its_incident_events_in_one_write_before_it_commits(
    intake: IntakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 12: the worker wrote the incident events of each delivery in a write of their own (one incident-DB
    transaction per delivery, ten per drain transaction on PostgreSQL). One write per drain transaction now; still
    before the transaction commits, so a crash between the two loses no event (the redo records nothing twice)."""
    from airflow.utils.session import create_session

    from toilless.incidents import recorder
    from toilless.intake import store
    from toilless.intake.drain import Drain

    intake.post_decided(_group(1, offset=200))  # warm: tables, settings, DAG cache
    monkeypatch.setattr(Drain, "_rows_per_transaction", staticmethod(lambda: 10))  # PostgreSQL's batch size
    deliveries = [intake.post(_group(4, offset=300 + 10 * n)).json()["delivery"] for n in range(3)]
    writes: list[tuple[int, list[Any]]] = []
    real = recorder.record_events

    def spy(batch: Any) -> bool:
        with create_session(scoped=False) as session:
            undecided = sum(1 for delivery in deliveries if store.inbox_row(session, delivery).done_at is None)
        writes.append((undecided, list(batch)))
        return real(batch)

    monkeypatch.setattr(recorder, "record_events", spy)

    assert intake.service.drain_inbox() == 3

    assert [undecided for undecided, _ in writes] == [3]  # one write, while no delivery was marked done yet
    incidents = {item.incident_id for item in writes[0][1]}
    assert len(incidents) == 12  # every alert of the three deliveries
    assert {item.kind for item in writes[0][1]} >= {"alert_received", "runbook_started"}


def test_posted_acks_are_on_their_incidents_timelines(intake: IntakeHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    """The intake's Slack ack is the system's first word to a person about an incident: once the outbox has posted
    it, it is a ``message_sent`` event (channel, first line) on that incident's timeline, all of a batch in one
    write. Before, only tasks' own messages were recorded, so a drill's "acknowledge" waited for the runbook's first
    message (minutes for dns_failover). A failed post records nothing."""
    from toilless.incidents import recorder
    from toilless.intake.worker import deliver_outbox

    intake.post_decided(_group(3, offset=400))
    writes: list[list[Any]] = []
    monkeypatch.setattr(recorder, "record_events", lambda batch: writes.append(list(batch)) or True)

    def failing(channel: str, message: dict[str, Any]) -> None:
        raise ConnectionError("Slack is down")

    assert deliver_outbox(failing) == 0
    assert writes == []

    posted: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr("toilless.intake.worker.now", lambda: 10**10)  # past the failed posts' backoff
    assert deliver_outbox(lambda channel, message: posted.append((channel, message))) == 3
    [batch] = writes
    assert sorted(event.incident_id for event in batch) == sorted(message["incident"] for _, message in posted)
    assert {event.kind for event in batch} == {"message_sent"}
    for event, (channel, message) in zip(
        sorted(batch, key=lambda e: e.incident_id), sorted(posted, key=lambda p: p[1]["incident"]), strict=True
    ):
        assert event.data == {"channel": channel, "via": "intake"}
        assert event.summary == message["text"].splitlines()[0][:200]
