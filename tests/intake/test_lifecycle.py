"""The intake app's life inside Airflow's API server: its worker starts with the app (not on the first POST), and its
API description is neither public nor loaded from a CDN (issue 12, defects 10 and 11)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.alert_intake import INTAKE_TOKEN, TEST_ROUTES, clear_intake_state

pytestmark = pytest.mark.integration


class _Poster:
    """Records what the worker posts, so a test can wait for it."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, dict[str, Any]]] = []
        self._event = threading.Event()

    def __call__(self, channel: str, message: dict[str, Any]) -> None:
        self.posted.append((channel, message))
        self._event.set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)


@pytest.fixture
def intake_parts(
    intake_dags: Path, set_connection: Callable[[str, dict[str, Any]], None]
) -> Iterator[tuple[Any, Any, _Poster]]:
    from toilless.intake.app import create_app
    from toilless.intake.service import IntakeService, SettingsProvider
    from toilless.intake.worker import IntakeWorker

    set_connection("toilless_alert_intake", {"conn_type": "generic", "login": "alertmanager", "password": INTAKE_TOKEN})
    clear_intake_state()
    poster = _Poster()
    service = IntakeService(SettingsProvider(ttl=0, routes_path=TEST_ROUTES))
    worker = IntakeWorker(service.start_queued, drain_inbox=service.drain_inbox, poster=poster, interval=0.2)
    app = create_app(service, worker)
    try:
        yield app, worker, poster
    finally:
        worker.stop()
        clear_intake_state()


def _unsent_ack_left_by_a_previous_process() -> None:
    """An outbox row as an API server that stopped before its worker posted it leaves behind."""
    from airflow import settings
    from airflow.utils.session import create_session
    from sqlalchemy import insert

    from toilless.intake.store import ensure_tables, outbox

    ensure_tables(settings.engine)
    with create_session() as session:
        session.execute(
            insert(outbox).values(
                channel="non_urgent",
                message_json=json.dumps({"text": "ack left over from before the restart"}),
                created_at=time.time(),
                attempts=0,
            )
        )


def test_worker_posts_unsent_acks_after_a_restart_without_waiting_for_a_delivery(
    intake_parts: tuple[Any, Any, _Poster],
) -> None:
    from airflow.api_fastapi.app import lifespan as airflow_lifespan
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    app, worker, poster = intake_parts
    _unsent_ack_left_by_a_previous_process()
    # Mounted the way Airflow's API server mounts plugin apps, started by Airflow's own lifespan.
    server = FastAPI(lifespan=airflow_lifespan)
    server.mount("/toilless", app)

    with TestClient(server) as client:
        assert client.get("/toilless/health").status_code == 200  # no POST at all
        assert poster.wait(timeout=20), "the outbox was not posted: the worker did not start with the app"
    assert poster.posted == [("non_urgent", {"text": "ack left over from before the restart"})]
    # The app's shutdown stops the worker: nothing keeps running after the API server stops.
    assert worker._thread is None


def test_worker_pass_on_a_new_metadata_db_creates_the_intake_tables(
    intake_parts: tuple[Any, Any, _Poster], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a new DB the worker runs before any delivery: it must not fail on "no such table" every 5 s."""
    from airflow import settings
    from sqlalchemy import inspect

    from toilless.intake import store

    _, worker, _ = intake_parts
    store.metadata.drop_all(bind=settings.engine)
    monkeypatch.setattr(store, "_created", False)

    assert worker.run_once() == (0, 0)
    tables = set(inspect(settings.engine).get_table_names())
    assert {"toilless_intake_alert", "toilless_intake_outbox", "toilless_intake_inbox"} <= tables


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"])
def test_api_description_is_not_public(intake_parts: tuple[Any, Any, _Poster], path: str) -> None:
    from fastapi.testclient import TestClient

    app, _, _ = intake_parts
    with TestClient(app) as client:
        response = client.get(path)

    assert response.status_code in (401, 404), response.text[:200]
    assert "swagger" not in response.text.lower()
    assert "cdn" not in response.text.lower()


def test_openapi_description_is_served_to_authenticated_callers_only_and_loads_nothing_remote(
    intake_parts: tuple[Any, Any, _Poster],
) -> None:
    from fastapi.testclient import TestClient

    app, _, _ = intake_parts
    with TestClient(app) as client:
        anonymous = client.get("/openapi.json")
        wrong = client.get("/openapi.json", headers={"Authorization": "Bearer not-the-token"})
        allowed = client.get("/openapi.json", headers={"Authorization": f"Bearer {INTAKE_TOKEN}"})
        docs = client.get("/docs", headers={"Authorization": f"Bearer {INTAKE_TOKEN}"})

    assert anonymous.status_code == 401
    assert wrong.status_code == 401
    assert allowed.status_code == 200
    assert "/alertmanager" in allowed.json()["paths"]
    # No HTML page that pulls Swagger UI from a CDN, for anyone.
    assert docs.status_code == 404
    assert "cdn.jsdelivr" not in docs.text
