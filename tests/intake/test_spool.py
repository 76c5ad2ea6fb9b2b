"""The webhook's spool on SQLite (toilless.intake.spool): an accepted delivery is durable without waiting for the
metadata DB's one write lock, and it is decided exactly once however the move into the inbox is interrupted."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.alert_intake import IntakeHarness, make_alert, make_payload
from toilless.intake.spool import SPOOL_FILE, Spool, spool_path


def test_ids_start_above_the_inboxs_and_never_go_back(tmp_path: Path) -> None:
    path = tmp_path / SPOOL_FILE
    spool = Spool(path, floor=lambda: 41)
    first = spool.put(receiver="toilless", alerts=2, body='{"alerts": []}')
    assert first == 42
    assert [row.id for row in spool.pending(10)] == [42]
    spooled = spool.get(42)
    assert spooled is not None
    assert spooled.alerts == 2
    spool.remove([42])
    assert spool.pending(10) == []
    assert spool.get(42) is None
    # A restarted process: its inbox floor is lower (purged rows), the ids still go on from the highest ever given.
    again = Spool(path, floor=lambda: 5)
    assert again.put(receiver="toilless", alerts=1, body="{}") == 43
    # A spool beside an inbox that grew meanwhile (another process wrote there directly) starts above it.
    assert Spool(path, floor=lambda: 100).put(receiver="toilless", alerts=1, body="{}") == 101
    assert [row.id for row in again.pending(10)] == [43, 101]


def test_only_a_sqlite_file_has_a_spool(tmp_path: Path) -> None:
    from sqlalchemy.engine import make_url

    assert spool_path(make_url(f"sqlite:///{tmp_path}/airflow.db")) == tmp_path / SPOOL_FILE
    assert spool_path(make_url("sqlite://")) is None
    assert spool_path(make_url("postgresql+psycopg2://airflow@db/airflow")) is None


def _metadata_db() -> str:
    from airflow import settings

    return str(settings.engine.url.database)


def test_the_webhook_answers_while_another_writer_holds_the_metadata_db(intake: IntakeHarness) -> None:
    """Before the spool, the insert waited for SQLite's lock behind Airflow's writers (up to its busy timeout, then
    "database is locked" and retries): here the lock is held until the answer has come, or for 120 s."""
    if intake.service._spool() is None:
        pytest.fail("the tests' metadata DB is expected to be a SQLite file, as in make run")
    holder = sqlite3.connect(_metadata_db(), timeout=30, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the scheduler's (or anyone's) write transaction
    answered: list[Any] = []
    request = threading.Thread(
        target=lambda: answered.append(
            intake.post(make_payload(make_alert(instance="db-held", environment="staging")))
        ),
        daemon=True,
    )
    request.start()
    request.join(120)
    held_throughout = request.is_alive() is False
    holder.execute("ROLLBACK")
    holder.close()
    request.join(60)
    assert held_throughout, "the webhook waited for the metadata DB's write lock"
    [response] = answered
    assert response.status_code == 200, response.text
    delivery = response.json()["delivery"]
    assert intake.service.delivery(delivery)["status"] == "pending"

    assert intake.service.drain_inbox() == 1
    assert intake.service.delivery(delivery)["counts"] == {"started": 1}
    assert len(intake.runs()) == 1


def test_a_crash_between_the_move_and_the_spools_removal_decides_once(
    intake: IntakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = intake.service._spool()
    assert spool is not None
    delivery = intake.post(make_payload(make_alert(instance="db-moved", environment="staging"))).json()["delivery"]

    def crash(self: Spool, deliveries: list[int]) -> None:
        raise RuntimeError("killed after the inbox commit, before the spool forgot")

    monkeypatch.setattr(Spool, "remove", crash)
    with pytest.raises(RuntimeError, match="killed"):
        intake.service.drain_inbox()
    assert spool.get(delivery) is not None  # still spooled, and already in the inbox

    monkeypatch.undo()
    assert intake.service.drain_inbox() == 1
    assert intake.service.drain_inbox() == 0
    assert spool.count() == 0
    assert intake.inbox_size() == 1  # moved once
    assert intake.service.delivery(delivery)["counts"] == {"started": 1}
    assert len(intake.runs()) == 1
