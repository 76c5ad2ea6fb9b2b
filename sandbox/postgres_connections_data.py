"""Real connection storms on a PostgreSQL server, for the postgres_connections tests, sandbox and benchmark.

A storm is many real sessions (psycopg2 connections) held open by this process in a chosen state: ``idle``,
``idle_in_transaction`` (a transaction opened and left), ``active`` (a query sleeping on the server), or
``replication`` (a walsender: a ``replication=database`` connection) under a chosen role and application_name.
"""

from __future__ import annotations

import logging
from typing import Any

from sandbox.postgres import PostgresServer

#: Roles the storms use besides the superuser: an ordinary application role and one with REPLICATION.
APP_ROLE = "app_user"
REPLICATION_ROLE = "repl_user"
log = logging.getLogger(__name__)
MODES = ("idle", "idle_in_transaction", "active", "replication")


def ensure_roles(server: PostgresServer) -> None:
    """The storm's roles (LOGIN; trust authentication on the test server), created once."""
    connection = server.connect("postgres")
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            for role, attributes in ((APP_ROLE, "LOGIN"), (REPLICATION_ROLE, "LOGIN REPLICATION")):
                cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
                if cursor.fetchone() is None:
                    cursor.execute(f"CREATE ROLE {role} {attributes}")
    finally:
        connection.close()


def wait_ready(connection: Any, timeout_ms: int = 30_000) -> None:
    """Finish an async psycopg2 connection's handshake with poll(2): select(), which psycopg2's wait_select uses,
    refuses file descriptors over 1,024, and a 2,000-session storm has many."""
    import select

    from psycopg2 import extensions

    poller = select.poll()
    while True:
        state = connection.poll()
        if state == extensions.POLL_OK:
            return
        events = select.POLLIN if state == extensions.POLL_READ else select.POLLOUT
        poller.register(connection.fileno(), events)
        try:
            if not poller.poll(timeout_ms):
                raise TimeoutError("PostgreSQL did not answer the connection in time")
        finally:
            poller.unregister(connection.fileno())


class SessionStorm:
    """``with SessionStorm(server) as storm: pids = storm.open(20, application="checkout", mode="idle")``."""

    def __init__(self, server: PostgresServer, database: str = "postgres") -> None:
        self.server = server
        self.database = database
        self.connections: list[Any] = []
        self.pids: list[int] = []

    def open(
        self, count: int, *, application: str, user: str = APP_ROLE, mode: str = "idle", sleep_seconds: float = 300
    ) -> list[int]:
        """Open ``count`` sessions in ``mode``; returns their pids."""
        import psycopg2

        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        pids = []
        for _ in range(count):
            dsn = {**self.server.dsn(self.database), "user": user, "application_name": application}
            if mode == "replication":
                connection = psycopg2.connect(**dsn, replication="database")
                pid = connection.get_backend_pid()
            elif mode == "active":
                connection = psycopg2.connect(**dsn, async_=1)
                wait_ready(connection)
                pid = connection.get_backend_pid()
                # Sent, not awaited: the server runs it while this process does other things.
                connection.cursor().execute("SELECT pg_sleep(%s)", (sleep_seconds,))
            else:
                connection = psycopg2.connect(**dsn)
                pid = connection.get_backend_pid()
                if mode == "idle_in_transaction":
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT 1")  # psycopg2 opens a transaction and leaves it open
                else:
                    connection.autocommit = True
            self.connections.append(connection)
            pids.append(pid)
        self.pids.extend(pids)
        return pids

    def alive(self, pids: list[int] | None = None) -> set[int]:
        """Which of ``pids`` (default: all of the storm's) still have a backend."""
        wanted = list(pids if pids is not None else self.pids)
        connection = self.server.connect("postgres")
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", (wanted,))
                return {row[0] for row in cursor.fetchall()}
        finally:
            connection.close()

    def close(self) -> None:
        if self.pids:
            connection = self.server.connect("postgres")
            connection.autocommit = True
            try:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY(%s)", (self.pids,)
                    )
            finally:
                connection.close()
        for connection in self.connections:
            try:
                connection.close()
            except Exception as err:
                log.debug("closing a storm session: %s", err)
        self.connections.clear()
        self.pids.clear()

    def __enter__(self) -> SessionStorm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
