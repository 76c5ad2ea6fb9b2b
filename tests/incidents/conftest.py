"""An incident database of its own per test (SQLite in tmp_path) and an outbox directory of its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def incident_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from toilless.incidents import db, recorder

    url = f"sqlite:///{tmp_path / 'incidents.db'}"
    monkeypatch.setenv(db.URL_ENV, url)
    monkeypatch.setenv("TOILLESS_INCIDENT_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setitem(recorder._state, "last_drain", 0.0)
    db.reset()
    yield db.engine()
    db.reset()


def alert(fingerprint: str = "f00dfeed01", starts_at: str = "2026-11-24T11:58:00Z", **labels: str) -> dict[str, Any]:
    """A run conf's alert object."""
    return {
        "alertname": labels.pop("alertname", "DiskFull"),
        "labels": labels,
        "fingerprint": fingerprint,
        "startsAt": starts_at,
        "status": "firing",
    }
