"""Where a storm's time went (issue 12, "The storm under real load"): the webhook reads nothing per delivery but
its one insert, and the worker reads a batch's ledger rows, target locks and run states once, not per alert."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.alert_intake import TEST_ROUTES, IntakeHarness, make_alert, make_payload

pytestmark = pytest.mark.integration


class _Statements:
    """The SQL statements run on Airflow's engine while recording."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.recording = False

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.recording:
            self.seen.append(" ".join(statement.split()))

    def matching(self, pattern: str) -> list[str]:
        return [statement for statement in self.seen if re.search(pattern, statement, re.IGNORECASE)]


@pytest.fixture
def statements() -> Iterator[_Statements]:
    from airflow import settings
    from sqlalchemy import event

    recorder = _Statements()
    event.listen(settings.engine, "before_cursor_execute", recorder)
    yield recorder
    event.remove(settings.engine, "before_cursor_execute", recorder)


def _group(start: int, count: int) -> dict[str, Any]:
    return make_payload(
        *(
            make_alert(fingerprint=f"{n:016x}", instance=f"db-{n}", environment="staging")
            for n in range(start, start + count)
        )
    )


def test_the_webhook_reads_nothing_per_delivery_but_writes_its_one_insert(
    intake: IntakeHarness, statements: _Statements
) -> None:
    from toilless.intake.models import WebhookPayload
    from toilless.intake.service import IntakeService, SettingsProvider

    service = IntakeService(SettingsProvider(ttl=60, routes_path=TEST_ROUTES), clock=lambda: intake.now)
    first = _group(0, 20)
    service.accept(WebhookPayload.model_validate(first), first)  # warms the settings and the DAG cache

    statements.recording = True
    for start in (20, 40, 60):
        body = _group(start, 20)
        answer = service.accept(WebhookPayload.model_validate(body), body)
        assert answer["counts"] == {"accepted": 20}
    statements.recording = False

    assert statements.matching(r"^SELECT") == [], statements.seen  # no DAG, DAG-version or settings reads
    spool = service._spool()
    if spool is None:
        assert len(statements.matching(r"^INSERT INTO toilless_intake_inbox")) == 3
    else:  # SQLite: the deliveries wait in the spool, not at the metadata DB's one write lock
        assert statements.seen == []
        assert spool.count() == 4


def test_the_worker_reads_a_batchs_ledger_locks_and_runs_once_not_per_alert(
    intake: IntakeHarness, statements: _Statements
) -> None:
    # Two deliveries of 25 alerts: 50 distinct targets, each alert once.
    answers = [intake.post(_group(start, 25)) for start in (0, 25)]
    assert [answer.status_code for answer in answers] == [200, 200]

    statements.recording = True
    assert intake.service.drain_inbox() == 2
    statements.recording = False

    ledger_reads = statements.matching(r"^SELECT .* FROM toilless_intake_alert")
    lock_reads = statements.matching(r"^SELECT .* FROM toilless_intake_target")
    run_reads = statements.matching(r"^SELECT .* FROM dag_run\b")
    # One read of each per transaction (SQLite decides one delivery per transaction: two), not one per alert (50).
    assert len(ledger_reads) <= 2, ledger_reads
    assert len(lock_reads) <= 2, lock_reads
    assert len(run_reads) <= 2, run_reads
    assert len(intake.runs()) == 50
    for answer in answers:
        decided = intake.service.delivery(answer.json()["delivery"])
        assert [result["status"] for result in decided["results"]] == ["started"] * 25
