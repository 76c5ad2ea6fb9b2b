"""Replica lag demo (postgres_replica_lag): a long query on the demo replica holds replay.

A ``nightly_report`` query on the replica reads a table for an hour; the primary then truncates it. With
``hot_standby_feedback=off`` and ``max_standby_streaming_delay=-1`` (the demo pair's replica) replay waits for the query,
so the replica falls behind by the second. The Variable ``toilless_postgres_replica_lag`` points the DAG at the pair
(``postgres_primary``, ``postgres_replica_1``, free disk measured on the replica's data directory). A run finds the
query, cancels it through the gate (lag over 10 s, the query over 30 s old) and replay catches up.
"""

from __future__ import annotations

import json
from typing import Any

from sandbox.postgres_replica_lag_data import hold_replay
from sandbox.service import SandboxContext, Service
from sandbox.services.postgres_connections import PAIR, PostgresPair


class PostgresReplicaLagService(Service):
    name = "postgres_replica_lag"
    order = 50
    description = "A long query on the demo replica holding replay (postgres_replica_lag)"

    def __init__(self) -> None:
        self.connections_held: list[Any] = []
        self.replica_data_dir = ""

    def start(self, ctx: SandboxContext) -> None:
        pair: PostgresPair = ctx.published[PAIR]
        assert pair.replica is not None
        self.replica_data_dir = str(pair.replica.data_dir)
        # Where the pair listens, for the replica_lag drill (sandbox/drill/), which injects and measures from outside.
        ctx.published["postgres_replica_lag"] = {
            "primary": pair.primary.dsn("postgres"),
            "replica": pair.replica.dsn("postgres"),
        }
        self.connections_held = hold_replay(
            pair.primary, pair.replica, "nightly_facts", sleep_seconds=3600, application="nightly_report"
        )

    def stop(self) -> None:
        for connection in self.connections_held:
            try:
                connection.close()
            except Exception:  # noqa: S110 - cancelled by the SOP already
                pass

    def variables(self, ctx: SandboxContext) -> dict[str, str]:
        override = {
            "primary_conn_id": "postgres_primary",
            "replicas": [
                {
                    "name": "replica-1",
                    "conn_id": "postgres_replica_1",
                    "disk": {"method": "path", "path": self.replica_data_dir},
                }
            ],
        }
        return {"toilless_postgres_replica_lag": json.dumps(override)}

    def summary(self, ctx: SandboxContext) -> str:
        return f"{self.description}: trigger postgres_replica_lag after ~30 s"
