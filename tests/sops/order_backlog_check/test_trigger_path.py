"""The deferred trigger's class path is stored in the metadata database for every deferred ``verify_recovery``: a run
deferred before a release must still find its trigger after it (the triggerer imports the stored path)."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta

#: The path runs deferred before the move into sops/order_backlog_check stored; it must keep importing.
STORED_CLASSPATH = "toilless.triggers.order_processor.OrderProcessorRecoveryTrigger"


def _import(classpath: str) -> type:
    module, _, name = classpath.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_the_stored_class_path_still_imports_and_rebuilds_the_trigger() -> None:
    trigger_class = _import(STORED_CLASSPATH)
    deadline = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
    stored_kwargs = {
        "settings": {"log": {"source": "file"}},
        "restarted_at": datetime.now(UTC).isoformat(),
        "baseline_outstanding": 40,
        "deadline": deadline,
        "poll_seconds": 10.0,
    }
    trigger = trigger_class(**stored_kwargs)
    classpath, kwargs = trigger.serialize()
    assert classpath == STORED_CLASSPATH
    assert kwargs == stored_kwargs


def test_the_triggerer_deserializes_the_stored_row() -> None:
    """What the triggerer does with a row written before the move: BaseSerialization of the kwargs, then the class."""
    from airflow.serialization.serialized_objects import BaseSerialization

    kwargs = {
        "settings": {"log": {"source": "file"}},
        "restarted_at": "2026-11-23T09:30:00+00:00",
        "baseline_outstanding": 40,
        "deadline": "2026-11-23T10:00:00+00:00",
        "poll_seconds": 10.0,
    }
    stored = BaseSerialization.serialize(kwargs)
    trigger = _import(STORED_CLASSPATH)(**BaseSerialization.deserialize(stored))
    assert trigger.serialize() == (STORED_CLASSPATH, kwargs)
