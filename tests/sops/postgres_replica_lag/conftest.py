"""The real primary (``postgres_server``) and its streaming replica (``postgres_replica``), their Connections, the
SOP's Variable, and an in-memory run-state store for step-level tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from sandbox.postgres import PostgresReplica, PostgresServer
from tests.sops.postgres_connections.conftest import window_far_from_now

PRIMARY = "pg_primary_under_test"
REPLICA = "pg_replica_under_test"


@dataclass
class PairEnv:
    primary: PostgresServer
    replica: PostgresReplica
    table: str
    configure: Callable[..., dict[str, Any]]


@pytest.fixture
def pair_env(
    postgres_server: PostgresServer,
    postgres_replica: PostgresReplica,
    set_connection: Callable[[str, dict[str, Any]], None],
    set_variable: Callable[[str, Any], None],
) -> PairEnv:
    set_connection(PRIMARY, postgres_server.airflow_connection("postgres"))
    set_connection(REPLICA, postgres_replica.airflow_connection("postgres"))

    def configure(**overrides: Any) -> dict[str, Any]:
        settings = {
            "primary_conn_id": PRIMARY,
            "replicas": [
                {
                    "name": "replica-a",
                    "conn_id": REPLICA,
                    "disk": {"method": "path", "path": str(postgres_replica.data_dir)},
                }
            ],
            "warning_seconds": 0.5,
            "critical_seconds": 1,
            "action_min_lag_seconds": 1,
            "min_blocking_query_seconds": 0.5,
            "maintenance_window": window_far_from_now(),
            **overrides,
        }
        set_variable("toilless_postgres_replica_lag", settings)
        return settings

    return PairEnv(postgres_server, postgres_replica, f"lag_{uuid.uuid4().hex[:8]}", configure)


@pytest.fixture
def markers(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    from toilless.sops.postgres_replica_lag import steps

    store: dict[str, Any] = {}
    monkeypatch.setattr(steps, "read_state", lambda key: store.get(key, {}))
    monkeypatch.setattr(steps, "write_state", lambda key, value: store.__setitem__(key, json.loads(json.dumps(value))))
    return store
