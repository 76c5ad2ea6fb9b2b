"""The real server (session-scoped ``postgres_server``), its Connection, the SOP's Variable and a storm per test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from sandbox.postgres import PostgresServer
from sandbox.postgres_connections_data import SessionStorm, ensure_roles

CONN_ID = "pg_sessions_under_test"
EVERY_DAY = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def window_around_now() -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"days": EVERY_DAY, "start": f"{(now.hour - 1) % 24:02d}:00", "end": f"{(now.hour + 2) % 24:02d}:00"}


def window_far_from_now() -> dict[str, Any]:
    """A maintenance window three days away (the shared default, Sunday 02:00, could be today)."""
    now = datetime.now(UTC)
    return {"days": [EVERY_DAY[(now.weekday() + 3) % 7]], "start": "02:00", "end": "04:00", "timezone": "UTC"}


@dataclass
class PgEnv:
    server: PostgresServer
    storm: SessionStorm
    #: An application name of this test only (sessions of other tests are never on its allow-list).
    app: str
    configure: Callable[..., dict[str, Any]]


@pytest.fixture
def pg_env(
    postgres_server: PostgresServer,
    set_connection: Callable[[str, dict[str, Any]], None],
    set_variable: Callable[[str, Any], None],
) -> Iterator[PgEnv]:
    ensure_roles(postgres_server)
    set_connection(CONN_ID, postgres_server.airflow_connection("postgres"))
    app = f"app_{uuid.uuid4().hex[:8]}"

    def configure(**overrides: Any) -> dict[str, Any]:
        settings = {
            "postgres_conn_id": CONN_ID,
            "allowed_applications": [app],
            "idle_in_transaction_seconds": 0.5,
            "idle_seconds": 0.5,
            "long_query_seconds": 0.5,
            "max_terminations_per_run": 3,
            "maintenance_window": window_far_from_now(),
            "report_channel": "infrastructure",
            **overrides,
        }
        set_variable("toilless_postgres_connections", settings)
        return settings

    with SessionStorm(postgres_server) as storm:
        yield PgEnv(postgres_server, storm, app, configure)
