"""The deferred verification: recovered only after the rollout is complete and the endpoints answered for the
sustained period; a flapping endpoint restarts the clock; the deadline gives ``timeout``."""

from __future__ import annotations

import asyncio
import importlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from toilless.sops.app_down import steps
from toilless.triggers.app_down import AppRecoveryTrigger


def _events(trigger: AppRecoveryTrigger) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(collect())


def _looks(results: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []

    def check(settings: Any) -> dict[str, Any]:
        calls.append(1)
        return results[min(len(calls), len(results)) - 1]

    monkeypatch.setattr(steps, "check_recovery", check)
    return calls


GOOD = {"rollout_complete": True, "endpoints_ok": True, "failing": []}
BAD = {"rollout_complete": True, "endpoints_ok": False, "failing": ["http://x/health"]}


def test_recovered_after_the_sustained_period(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _looks([BAD, GOOD, BAD, GOOD], monkeypatch)  # flaps once: the clock starts again
    deadline = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()

    [event] = _events(AppRecoveryTrigger(settings={}, deadline=deadline, poll_seconds=0.05, sustain_seconds=0.2))

    assert event["status"] == "recovered"
    assert event["sustained_seconds"] >= 0.2
    assert len(calls) >= 6  # BAD, GOOD, BAD, then GOOD held for 0.2 s


def test_timeout_when_it_never_recovers(monkeypatch: pytest.MonkeyPatch) -> None:
    _looks([BAD], monkeypatch)
    deadline = (datetime.now(UTC) + timedelta(seconds=0.3)).isoformat()

    [event] = _events(AppRecoveryTrigger(settings={}, deadline=deadline, poll_seconds=0.05, sustain_seconds=0.1))

    assert event["status"] == "timeout"
    assert "http://x/health" in event["detail"]


def test_trigger_class_path_is_importable() -> None:
    path, kwargs = AppRecoveryTrigger(settings={"a": 1}, deadline="2030-01-01T00:00:00+00:00").serialize()
    module, name = path.rsplit(".", 1)
    assert getattr(importlib.import_module(module), name) is AppRecoveryTrigger
    assert kwargs["settings"] == {"a": 1}
