"""The API server's app freezes the start-up heap for the garbage collector, once per process (issue 12, the storm's
p99): a full collection of Airflow's API server stopped every thread for about 0.3 s of CPU, and the storm's slowest
answers were the ones it caught. A test's app does not freeze (it would freeze the test process)."""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any

import pytest
from fastapi.testclient import TestClient


class _IdleWorker:
    """Stands in for the intake worker: the lifespan starts and stops it, nothing else."""

    def ensure_started(self) -> None:
        pass

    def wake(self) -> None:
        pass

    def stop(self, timeout: float = 10.0) -> None:
        pass


@pytest.fixture
def freezes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the app asks of the garbage collector, in order, in a process that has not frozen its heap yet."""
    from toilless.intake import app as intake_app

    calls: list[str] = []
    monkeypatch.setattr(intake_app, "_heap_frozen", threading.Event())
    monkeypatch.setattr(gc, "collect", lambda *args: calls.append("collect") or 0)
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    return calls


def _start_and_stop(app: Any) -> None:
    with TestClient(app) as client:
        assert client.get("/health").json() == {"status": "ok"}


def test_api_server_app_collects_then_freezes_once_per_process(freezes: list[str]) -> None:
    from toilless.intake.app import create_app
    from toilless.intake.service import IntakeService

    # Twice: Airflow may run the lifespan again (a reloaded app) in the same process; the heap is frozen once.
    for _ in range(2):
        _start_and_stop(create_app(IntakeService(), _IdleWorker(), freeze_heap=True))  # type: ignore[arg-type]
    assert freezes == ["collect", "freeze"]


def test_app_built_by_a_test_does_not_freeze_the_process(freezes: list[str]) -> None:
    from toilless.intake.app import create_app
    from toilless.intake.service import IntakeService

    _start_and_stop(create_app(IntakeService(), _IdleWorker()))  # type: ignore[arg-type]
    assert freezes == []


def test_the_plugins_app_is_the_freezing_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from toilless.intake import app as intake_app

    built: list[dict[str, Any]] = []
    monkeypatch.setattr(intake_app, "_app", None)
    monkeypatch.setattr(intake_app, "create_app", lambda **kwargs: built.append(kwargs) or object())
    intake_app.get_app()
    assert built == [{"freeze_heap": True}]


def test_frozen_objects_leave_full_collections_and_later_garbage_is_still_collected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from toilless.intake import app as intake_app

    monkeypatch.setattr(intake_app, "_heap_frozen", threading.Event())
    before = gc.get_freeze_count()
    try:
        assert intake_app.freeze_startup_heap() is True
        assert gc.get_freeze_count() > before
        assert intake_app.freeze_startup_heap() is False  # once per process

        class Cycle:
            pass

        # A reference cycle made after the freeze is still found by the collector.
        first, second = Cycle(), Cycle()
        first.other, second.other = second, first  # type: ignore[attr-defined]
        watched = weakref.ref(first)
        del first, second
        gc.collect()
        assert watched() is None
    finally:
        gc.unfreeze()
