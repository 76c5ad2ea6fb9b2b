"""The inbox claim on a real PostgreSQL (the distributed deployment's metadata DB): two API servers draining at
once each take deliveries the other does not hold (``FOR UPDATE SKIP LOCKED``), so no delivery is decided twice."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

pytestmark = pytest.mark.integration

DELIVERIES = 40


def _inbox_engine(postgres_server: Any, database: str) -> Any:
    from sqlalchemy import create_engine, insert

    from sandbox.ports import HOST
    from toilless.intake.store import inbox

    postgres_server.create_database(database)
    engine = create_engine(f"postgresql+psycopg2://postgres@{HOST}:{postgres_server.port}/{database}")
    inbox.create(engine)
    with engine.begin() as connection:
        for _ in range(DELIVERIES):
            connection.execute(
                insert(inbox).values(
                    receiver="toilless", alerts=50, payload_json="{}", received_at=time.time(), attempts=0
                )
            )
    return engine


def _two_workers_drain(engine: Any, dialect: str) -> tuple[list[int], list[int]]:
    """Two workers, each: claim up to 5 deliveries, hold them while "deciding", mark them done, commit; repeat."""
    from sqlalchemy import update

    from toilless.intake.store import claim_inbox, inbox

    decided: list[list[int]] = [[], []]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            while True:
                with engine.begin() as connection:
                    rows = connection.execute(claim_inbox(dialect, 5, time.time())).all()
                    try:
                        barrier.wait(5)  # both have claimed before either commits
                    except threading.BrokenBarrierError:
                        pass
                    if not rows:
                        barrier.abort()
                        return
                    time.sleep(0.05)  # deciding: runs, ledger, acks
                    for row in rows:
                        connection.execute(update(inbox).where(inbox.c.id == row.id).values(done_at=time.time()))
                        decided[index].append(row.id)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return decided[0], decided[1]


def test_two_workers_on_postgresql_claim_disjoint_deliveries_and_decide_each_once(postgres_server: Any) -> None:
    engine = _inbox_engine(postgres_server, "intake_inbox_claims")
    try:
        first, second = _two_workers_drain(engine, "postgresql")
    finally:
        engine.dispose()

    assert set(first).isdisjoint(second), sorted(set(first) & set(second))
    assert sorted(first + second) == list(range(1, DELIVERIES + 1))  # every delivery, each exactly once
    assert first
    assert second  # both really drained


def test_without_skip_locked_the_same_two_workers_would_decide_deliveries_twice(postgres_server: Any) -> None:
    """The test above can fail: with the claim SQLite uses (no row lock), both workers take the same rows."""
    engine = _inbox_engine(postgres_server, "intake_inbox_claims_unlocked")
    try:
        first, second = _two_workers_drain(engine, "sqlite")
    finally:
        engine.dispose()

    assert set(first) & set(second)
