"""The incident record on PostgreSQL (the distributed deployment), found through its Connection
``toilless_incidents``: events, acknowledgement, and one escalation step claimed by one of many sweepers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from toilless.incidents import events as ev


@pytest.fixture
def pg_incidents(
    postgres_server: Any,
    set_connection: Callable[[str, dict[str, Any]], None],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> Iterator[Any]:
    from toilless.incidents import db

    postgres_server.create_database("toilless_incidents")
    monkeypatch.delenv(db.URL_ENV, raising=False)
    monkeypatch.setenv("TOILLESS_INCIDENT_OUTBOX_DIR", str(tmp_path / "outbox"))
    set_connection(db.CONN_ID, postgres_server.airflow_connection("toilless_incidents"))
    db.reset()
    yield db.engine()
    db.reset()


def test_events_ack_and_one_escalation_claim_on_postgres(pg_incidents: Any) -> None:
    from toilless.incidents import acknowledge, record, store

    assert pg_incidents.dialect.name == "postgresql"
    opened = datetime.now(UTC) - timedelta(minutes=20)
    assert record(ev.ALERT_RECEIVED, incident_id="0a01", at=opened, data={"alertname": "X", "severity": "P0"})
    assert record(ev.ALERT_RECEIVED, incident_id="0a02", at=opened, data={"alertname": "Y", "severity": "P0"})
    assert acknowledge("0a02", "alice", "rest")["acknowledged_by"] == "alice"

    def claim(_: int) -> bool:
        return store.claim_escalation(pg_incidents, "0a01", from_level=0, to_level=1, at=datetime.now(UTC).timestamp())

    with ThreadPoolExecutor(max_workers=4) as pool:
        winners = sum(pool.map(claim, range(8)))
    assert winners == 1
    assert store.claim_escalation(pg_incidents, "0a02", from_level=0, to_level=1, at=0.0) is False  # acknowledged
    assert [row["incident_id"] for row in store.open_incidents(pg_incidents)] == ["0a01", "0a02"]
