"""What `make run` gives the two PostgreSQL SOPs: their own steps, pointed at the sandbox's Connections and Variables,
find the demo problems (a connection storm with a lock chain; a query holding replay)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.service import SandboxContext
from sandbox.services.postgres_connections import PostgresConnectionsService
from sandbox.services.postgres_replica_lag import PostgresReplicaLagService

pytestmark = pytest.mark.integration


@pytest.fixture
def sandbox(
    tmp_path: Path, set_connection: Callable[[str, dict[str, Any]], None], set_variable: Callable[[str, Any], None]
) -> Iterator[SandboxContext]:
    ctx = SandboxContext(home=tmp_path, preferred_ports=False)
    services = [PostgresConnectionsService(), PostgresReplicaLagService()]
    started = []
    try:
        for service in services:
            service.start(ctx)
            started.append(service)
            for conn_id, connection in service.connections(ctx).items():
                set_connection(conn_id, connection)
            for key, value in service.variables(ctx).items():
                set_variable(key, value)
        yield ctx
    finally:
        for service in reversed(started):
            service.stop()


def test_sandbox_gives_each_sop_a_real_problem_to_find(
    sandbox: SandboxContext, set_variable: Callable[..., None]
) -> None:
    import json

    from toilless.sops.postgres_connections import steps as connections
    from toilless.sops.postgres_replica_lag import steps as replica_lag

    override = json.loads(PostgresConnectionsService().variables(sandbox)["toilless_postgres_connections"])
    # The demo's 60 s age, shortened so the test need not wait a minute.
    set_variable("toilless_postgres_connections", {**override, "idle_in_transaction_seconds": 0.5})
    time.sleep(1.0)
    diagnosis = connections.inspect_connections(connections.resolve_settings({"dry_run": True}))
    assert diagnosis["usage"]["level"] in ("warning", "critical")
    assert len(diagnosis["to_end"]) == 5
    assert {item["application_name"] for item in diagnosis["to_end"]} == {"checkout"}
    assert diagnosis["chains"][0]["application_name"] == "billing"
    assert diagnosis["chains"][0]["waiting"] == 2

    settings = replica_lag.resolve_settings({"dry_run": True})
    [replica] = replica_lag.inspect_replication(settings)["replicas"]
    assert replica["causes"] == ["replay_blocked_by_query"]
    assert any("nightly_report" in line for line in replica["evidence"])
