"""PostgreSQL demo pair for the data-store SOPs, and the connection storm postgres_connections finds.

* A small primary (max_connections 40) on 127.0.0.1:5058 and a real
  streaming replica (pg_basebackup) on 127.0.0.1:5059 with ``hot_standby_feedback=off`` and
  ``max_standby_streaming_delay=-1``, in a temporary directory (fresh at every start). Connections
  ``postgres_default`` and ``postgres_primary`` (the primary), ``postgres_replica_1`` (the replica).
* A storm held open by the sandbox: ``checkout`` with 8 sessions idle in a
  transaction and 15 idle (pool setting 10), ``reporting`` with 4 queries running for an hour and a session holding
  a row lock two others wait for. The Variable ``toilless_postgres_connections`` allow-lists ``checkout`` and lowers
  the idle-in-transaction age to 60 s, so a run a minute after start ends at most 5 of them and advises on pools.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from sandbox.postgres import PostgresReplica, PostgresServer
from sandbox.postgres_connections_data import APP_ROLE, SessionStorm, ensure_roles
from sandbox.service import SandboxContext, ServerService

PAIR = "postgres_pair"
OVERRIDE = {
    "postgres_conn_id": "postgres_default",
    "allowed_applications": ["checkout"],
    "idle_in_transaction_seconds": 60,
    "long_query_seconds": 60,
    "pools": {"checkout": 10, "reporting": 5},
}


class PostgresPair:
    """A primary and its streaming replica, started and stopped together."""

    def __init__(self, primary_port: int, replica_port: int) -> None:
        self.primary = PostgresServer(port=primary_port, settings={"max_connections": "40"})
        self.replica: PostgresReplica | None = None
        self._replica_port = replica_port

    def start(self) -> PostgresPair:
        self.primary.start()
        self.replica = PostgresReplica(
            self.primary,
            port=self._replica_port,
            settings={"hot_standby_feedback": "off", "max_standby_streaming_delay": "-1"},
        ).start()
        self.replica.wait_streaming()
        return self

    def stop(self) -> None:
        if self.replica is not None:
            self.replica.stop()
        self.primary.stop()


class PostgresConnectionsService(ServerService):
    """The pair (published as ``postgres_pair`` for postgres_replica_lag's demo) and the storm on its primary."""

    name = "postgres_connections"
    published_as = PAIR
    description = "PostgreSQL primary + streaming replica, a connection storm on the primary (postgres_connections)"

    def __init__(self) -> None:
        super().__init__()
        self.storm: SessionStorm | None = None

    def launch(self, ctx: SandboxContext) -> PostgresPair:
        return PostgresPair(ctx.port(5058), ctx.port(5059))

    def start(self, ctx: SandboxContext) -> None:
        super().start(ctx)
        pair: PostgresPair = self.running()
        ensure_roles(pair.primary)
        storm = self.storm = SessionStorm(pair.primary)
        storm.open(8, application="checkout", mode="idle_in_transaction")
        storm.open(15, application="checkout", mode="idle")
        storm.open(4, application="reporting", mode="active", sleep_seconds=3600)
        _lock_chain(pair.primary, storm)

    def stop(self) -> None:
        if self.storm is not None:
            self.storm.close()
        super().stop()

    def connections(self, ctx: SandboxContext) -> dict[str, dict[str, Any]]:
        pair = self.running()
        primary = pair.primary.airflow_connection("postgres")
        return {
            "postgres_default": primary,
            "postgres_primary": primary,
            "postgres_replica_1": pair.replica.airflow_connection("postgres"),
        }

    def variables(self, ctx: SandboxContext) -> dict[str, str]:
        return {"toilless_postgres_connections": json.dumps(OVERRIDE)}

    def summary(self, ctx: SandboxContext) -> str:
        pair = self.running()
        return (
            f"PostgreSQL primary 127.0.0.1:{pair.primary.port} (30 of 37 slots used, idle-in-transaction checkout "
            f"sessions, a lock chain) + replica 127.0.0.1:{pair.replica.port}: trigger postgres_connections"
        )


def _lock_chain(primary: PostgresServer, storm: SessionStorm) -> None:
    """A ``billing`` session holding a row lock (idle in transaction) and two waiting for it."""
    setup = primary.connect("postgres")
    setup.autocommit = True
    with setup.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS invoices (id int PRIMARY KEY, total numeric)")
        cursor.execute("INSERT INTO invoices VALUES (1, 10) ON CONFLICT DO NOTHING")
        cursor.execute(f"GRANT ALL ON invoices TO {APP_ROLE}")
    setup.close()
    storm.open(1, application="billing")
    holder = storm.connections[-1]
    holder.autocommit = False
    with holder.cursor() as cursor:
        cursor.execute("UPDATE invoices SET total = total + 1 WHERE id = 1")
    for _ in range(2):
        storm.open(1, application="billing")
        waiter = storm.connections[-1]
        threading.Thread(target=_wait_for_lock, args=(waiter,), daemon=True).start()


def _wait_for_lock(connection: Any) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("UPDATE invoices SET total = total + 1 WHERE id = 1")
    except Exception:  # noqa: S110 - ended by the SOP or at sandbox stop
        pass
