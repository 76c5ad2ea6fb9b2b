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


# -- the webhook's insert on the intake's own connections -----------------------------------------------------------
@pytest.fixture
def service_on_postgres(postgres_server: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An IntakeService whose metadata DB is a fresh PostgreSQL database (the intake's tables only)."""
    from airflow import settings as airflow_settings
    from sqlalchemy import create_engine

    from sandbox.ports import HOST
    from toilless.intake import store
    from toilless.intake.service import IntakeService

    postgres_server.create_database("intake_own_pool")
    engine = create_engine(f"postgresql+psycopg2://postgres@{HOST}:{postgres_server.port}/intake_own_pool")
    store.metadata.create_all(engine)
    monkeypatch.setattr(airflow_settings, "engine", engine)
    # Created above: ensure_tables must not mark this process's (SQLite) metadata DB as having them.
    monkeypatch.setattr(store, "_created", True)
    service = IntakeService()
    yield service
    if service._own_engine is not None:
        service._own_engine.dispose()
    engine.dispose()


def _insert(session: Any) -> int:
    from toilless.intake import store

    return store.insert_inbox(session, receiver="toilless", alerts=1, body="{}")


def test_webhook_insert_is_committed_when_its_statement_returns(service_on_postgres: Any) -> None:
    """Autocommit: the delivery is durable as soon as its one INSERT returns (no BEGIN / COMMIT round trips)."""
    from airflow import settings as airflow_settings
    from sqlalchemy import select

    from toilless.intake import store

    seen_from_elsewhere: list[int] = []

    def insert_then_look_from_another_connection(session: Any) -> int:
        delivery = _insert(session)
        with airflow_settings.engine.connect() as other:
            seen_from_elsewhere.extend(other.execute(select(store.inbox.c.id)).scalars())
        return delivery

    delivery = service_on_postgres._write(insert_then_look_from_another_connection, own_pool=True)
    assert seen_from_elsewhere == [delivery]


def test_webhook_insert_survives_a_connection_the_server_closed(service_on_postgres: Any) -> None:
    """No ping on checkout: a pooled connection the server ended (a restart) fails once and is retried on a new one."""
    from airflow import settings as airflow_settings
    from sqlalchemy import func, select, text

    from toilless.intake import store

    backends: list[int] = []

    def insert_noting_backend(session: Any) -> int:
        backends.append(session.execute(text("SELECT pg_backend_pid()")).scalar_one())
        return _insert(session)

    service_on_postgres._write(insert_noting_backend, own_pool=True)
    with airflow_settings.engine.connect() as admin:
        admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backends[0]})
    service_on_postgres._write(insert_noting_backend, own_pool=True)
    assert backends[-1] != backends[0]
    with airflow_settings.engine.connect() as other:
        assert other.execute(select(func.count()).select_from(store.inbox)).scalar_one() == 2


# -- LISTEN / NOTIFY: the worker wakes on an accepted delivery instead of finding it at its next poll ---------------
def _listening_connection(engine: Any) -> Any:
    from toilless.intake import store

    raw = engine.raw_connection()
    connection = raw.driver_connection
    raw.detach()
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"LISTEN {store.INBOX_CHANNEL}")
    return connection


def _notified(connection: Any, seconds: float) -> int:
    import select

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        select.select([connection], [], [], 0.1)
        connection.poll()
        if connection.notifies:
            count = len(connection.notifies)
            connection.notifies.clear()
            return count
    return 0


def test_an_accepted_delivery_notifies_the_workers_once_it_is_committed(service_on_postgres: Any) -> None:
    """The webhook's one statement also notifies; PostgreSQL sends it at commit, never for an uncommitted row."""
    from airflow import settings as airflow_settings
    from sqlalchemy.orm import Session

    listener = _listening_connection(airflow_settings.engine)
    try:
        with Session(bind=airflow_settings.engine) as session:
            _insert(session)
            assert _notified(listener, 0.5) == 0  # not committed: a worker woken now would find nothing
            session.commit()
        assert _notified(listener, 5) == 1
        service_on_postgres._write(_insert, own_pool=True)  # the webhook's path (autocommit, one round trip)
        assert _notified(listener, 5) == 1
    finally:
        listener.close()


def test_the_worker_wakes_on_an_accepted_delivery(service_on_postgres: Any) -> None:
    from airflow import settings as airflow_settings

    from toilless.intake.worker import InboxListener

    woken = threading.Event()
    listener = InboxListener(woken.set, airflow_settings.engine).start()
    try:
        assert listener.listening.wait(10)
        time.sleep(0.2)
        woken.clear()  # the wake-up every (re)connection gives, for what arrived while not listening
        service_on_postgres._write(_insert, own_pool=True)
        assert woken.wait(5)
    finally:
        listener.stop()
