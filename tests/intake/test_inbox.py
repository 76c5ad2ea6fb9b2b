"""The durable inbox (issue 12, "The storm under real load"): the webhook answers once a delivery is written, the
worker decides it; whatever crashes or overlaps in between, each firing alert starts its run exactly once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.fixtures.alert_intake import TEST_ROUTES, IntakeHarness, make_alert, make_payload

pytestmark = pytest.mark.integration

PROD_DISK = {"instance": "db-1", "environment": "prod", "severity": "critical", "service": "orders"}


def _group(count: int, *, offset: int = 0, fingerprint: str = "") -> dict[str, Any]:
    return make_payload(
        *(
            make_alert(
                fingerprint=fingerprint or f"{offset + n:016x}", instance=f"db-{offset + n}", environment="staging"
            )
            for n in range(count)
        )
    )


def _fresh_service(intake: IntakeHarness) -> Any:
    """A new IntakeService, as a restarted API server has: nothing in memory from before."""
    from toilless.intake.service import IntakeService, SettingsProvider

    return IntakeService(SettingsProvider(ttl=0, routes_path=TEST_ROUTES), clock=lambda: intake.now)


def _started_acks(intake: IntakeHarness) -> list[str]:
    """The "runbook started" acknowledgements written to the outbox (posted or not)."""
    import json

    from airflow.utils.session import create_session
    from sqlalchemy import select

    from toilless.intake.store import outbox

    with create_session() as session:
        messages = session.execute(select(outbox.c.message_json)).scalars().all()
    return [text for text in (json.loads(m)["text"] for m in messages) if "runbook started" in text]


def _wait(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_a_delivery_is_accepted_at_once_and_the_worker_starts_exactly_one_run(intake: IntakeHarness) -> None:
    response = intake.post(make_payload(make_alert(**PROD_DISK)))

    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert result["status"] == "accepted"
    assert response.json()["counts"] == {"accepted": 1}
    assert intake.runs() == []  # nothing decided in the HTTP answer
    assert intake.inbox_size(pending_only=True) == 1
    status = intake.client.get(f"/deliveries/{response.json()['delivery']}", headers=_auth())
    assert status.json()["status"] == "pending"

    assert intake.service.drain_inbox() == 1
    assert intake.service.drain_inbox() == 0  # decided once; nothing left

    [run] = intake.runs()
    assert run[0] == result["run_id"]  # the run id the answer announced
    assert intake.inbox_size(pending_only=True) == 0
    decided = intake.client.get(f"/deliveries/{response.json()['delivery']}", headers=_auth()).json()
    assert decided["status"] == "done"
    assert decided["counts"] == {"started": 1}
    assert intake.client.get(f"/deliveries/{response.json()['delivery']}").status_code == 401
    assert len(_started_acks(intake)) == 1


def test_a_crash_between_the_inbox_write_and_the_drain_still_starts_exactly_one_run(
    intake: IntakeHarness,
) -> None:
    """The API server dies after answering 200: the next one's worker decides the delivery at start-up."""
    from airflow.api_fastapi.app import lifespan as airflow_lifespan
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from toilless.intake.app import create_app
    from toilless.intake.worker import IntakeWorker

    answer = intake.post(_group(3))
    assert answer.status_code == 200, answer.text
    assert intake.runs() == []  # the process "crashed" here: accepted, nothing decided

    service = _fresh_service(intake)
    posted: list[tuple[str, dict[str, Any]]] = []
    worker = IntakeWorker(
        service.start_queued,
        drain_inbox=service.drain_inbox,
        poster=lambda channel, message: posted.append((channel, message)),
        interval=0.2,
    )
    server = FastAPI(lifespan=airflow_lifespan)
    server.mount("/toilless", create_app(service, worker))
    with TestClient(server):  # no POST at all: the worker starts with the app
        assert _wait(lambda: intake.inbox_size(pending_only=True) == 0), "the worker did not drain the inbox"
        assert _wait(lambda: len(posted) == 3)

    assert len(intake.runs()) == 3
    assert intake.service.delivery(answer.json()["delivery"])["counts"] == {"started": 3}
    assert intake.service.drain_inbox() == 0
    assert len(intake.runs()) == 3
    assert sum("runbook started" in message["text"] for _, message in posted) == 3


def test_a_crash_inside_the_decision_transaction_decides_nothing_and_the_retry_decides_once(
    intake: IntakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.utils.session import create_session
    from sqlalchemy import select, update

    from toilless.intake.service import IntakeService
    from toilless.intake.store import inbox

    answer = intake.post(_group(3))
    delivery = answer.json()["delivery"]

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed between the decisions and the inbox mark")

    monkeypatch.setattr(IntakeService, "_mark_done", staticmethod(crash))
    assert intake.service.drain_inbox() == 0

    # Rolled back with the inbox mark: no run, no ack, the delivery kept and postponed (never dropped).
    assert intake.runs() == []
    assert intake.outbox_size() == 0
    with create_session() as session:
        row = session.execute(select(inbox).where(inbox.c.id == delivery)).one()
        assert row.done_at is None
        assert row.attempts == 1
        assert "killed" in row.last_error
        session.execute(update(inbox).values(not_before=None))  # skip the backoff instead of sleeping through it

    monkeypatch.undo()  # the next process runs the real code
    assert _fresh_service(intake).drain_inbox() == 1
    assert len(intake.runs()) == 3
    assert intake.service.delivery(delivery)["counts"] == {"started": 3}
    assert len(_started_acks(intake)) == 3


def test_a_crash_after_alert_by_alert_decisions_redoes_nothing(
    intake: IntakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fallback path (a race inside the batch) commits each alert alone, then marks the delivery: a crash in
    between leaves the delivery pending, and deciding it again finds every decision in the ledger."""
    from toilless.intake.service import IntakeService

    answer = intake.post(_group(3))
    delivery = answer.json()["delivery"]

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed before the inbox mark")

    monkeypatch.setattr(IntakeService, "_mark_done", staticmethod(crash))
    intake.service._admit_spooled()  # what drain_inbox does first (SQLite: the webhook spooled the delivery)
    with pytest.raises(RuntimeError, match="killed"):
        intake.service._drain_alone(delivery, intake.service.provider.get())
    assert len(intake.runs()) == 3  # each alert committed with its run
    assert intake.service.delivery(delivery)["status"] == "pending"
    acks_before = len(_started_acks(intake))

    monkeypatch.undo()  # the next process runs the real code
    assert _fresh_service(intake).drain_inbox() == 1

    assert len(intake.runs()) == 3
    assert intake.service.delivery(delivery)["counts"] == {"duplicate": 3}
    assert acks_before == 3
    assert len(_started_acks(intake)) == 3  # no second ack


def test_duplicate_deliveries_while_the_worker_drains_start_each_target_once(intake: IntakeHarness) -> None:
    """HA replicas and retries arrive while the worker is deciding: runs = distinct targets, one ack each."""
    from toilless.intake.worker import IntakeWorker

    posted: list[str] = []
    worker = IntakeWorker(
        intake.service.start_queued,
        drain_inbox=intake.service.drain_inbox,
        poster=lambda channel, message: posted.append(message["text"]),
        interval=0.05,
    )
    bodies = [_group(10), _group(10), _group(10, offset=5), _group(10, offset=5), _group(15)]
    answers: list[Any] = []
    lock = threading.Lock()

    def send(body: dict[str, Any]) -> None:
        for _ in range(3):  # each body three times: repeats
            response = intake.post(body)
            with lock:
                answers.append(response)

    worker.ensure_started()
    try:
        senders = [threading.Thread(target=send, args=(body,)) for body in bodies]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(60)
        assert _wait(lambda: intake.inbox_size(pending_only=True) == 0), "the inbox was not drained"
        assert _wait(lambda: intake.outbox_size() == 0)
    finally:
        worker.stop()

    assert [response.status_code for response in answers] == [200] * 15
    decided = [intake.service.delivery(response.json()["delivery"]) for response in answers]
    statuses = [result["status"] for answer in decided for result in answer["results"]]
    assert statuses.count("started") == 15, statuses  # db-0 .. db-14: 15 distinct targets
    assert set(statuses) == {"started", "duplicate"}
    assert sorted(run[0].split("__")[2] for run in intake.runs()) == sorted(f"instance-db-{n}" for n in range(15))
    assert sum("runbook started" in text for text in posted) == 15


def _auth() -> dict[str, str]:
    from tests.fixtures.alert_intake import INTAKE_TOKEN

    return {"Authorization": f"Bearer {INTAKE_TOKEN}"}
