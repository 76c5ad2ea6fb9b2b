"""PostgreSQL administration through an Airflow ``postgres`` Connection (the postgres provider's PostgresHook).

Reads the server's own views (pg_stat_activity, pg_stat_replication, ...) with queries the SOPs keep in
include/sql/<dag_id>/, and ends or cancels one backend only when it is still the very session that was read
(pid + backend_start + the moment of its last state change): a pid the server has since given to another session is
never touched. No SOP logic here: which session may be ended is the SOP's decision.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from toilless.common.errors import InvalidInput

if TYPE_CHECKING:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

log = logging.getLogger(__name__)

#: What Toilless's own sessions call themselves (``application_name``): the SOPs never end a session so named.
OWN_APPLICATION_PREFIX = "toilless"
#: Longest a diagnosis query may run on a database that is already struggling.
DEFAULT_STATEMENT_TIMEOUT_MS = 15_000
_APPLICATION_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,63}")


class NotPostgresConnection(InvalidInput):
    """The Connection is missing or not of type ``postgres``; the message says which and what it is."""


def load_query(path: Path) -> str:
    """The query text without ``--`` comment lines and without the trailing semicolon."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.strip().startswith("--")]
    return "\n".join(lines).strip().rstrip(";")


class PostgresAdminHook(BaseHook):
    """One PostgreSQL server, for reading its activity and ending or cancelling single backends.

    :param postgres_conn_id: an Airflow Connection of type ``postgres``; anything else is refused before connecting.
    :param application_name: what this hook's own session is called on the server (starts with ``toilless``).
    :param statement_timeout_ms: bound for every statement this hook runs.
    """

    conn_name_attr = "postgres_conn_id"
    default_conn_name = "postgres_default"
    conn_type = "postgres"
    hook_name = "PostgreSQL administration"

    def __init__(
        self,
        *,
        postgres_conn_id: str = default_conn_name,
        application_name: str = OWN_APPLICATION_PREFIX,
        statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
    ) -> None:
        super().__init__()
        if not application_name.startswith(OWN_APPLICATION_PREFIX) or not _APPLICATION_NAME.fullmatch(application_name):
            raise ValueError(f"application_name must start with {OWN_APPLICATION_PREFIX!r}: {application_name!r}")
        self.postgres_conn_id = postgres_conn_id
        self.application_name = application_name
        self.statement_timeout_ms = int(statement_timeout_ms)
        self._connection: Any = None

    @cached_property
    def connection_info(self) -> Any:
        from airflow.exceptions import AirflowNotFoundException

        try:
            connection = self.get_connection(self.postgres_conn_id)
        except AirflowNotFoundException as err:
            raise NotPostgresConnection(f"Connection {self.postgres_conn_id!r} does not exist") from err
        if (connection.conn_type or "") != "postgres":
            raise NotPostgresConnection(
                f"Connection {self.postgres_conn_id!r} is of type {connection.conn_type or 'unset'!r}, not "
                "'postgres': this SOP only talks to PostgreSQL"
            )
        return connection

    @cached_property
    def sql_hook(self) -> PostgresHook:
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        self.connection_info  # noqa: B018 - refuses a non-PostgreSQL Connection before any driver is loaded
        return PostgresHook(postgres_conn_id=self.postgres_conn_id)

    def _conn(self) -> Any:
        """One autocommit session per hook: each statement sees a fresh pg_stat_activity snapshot."""
        if self._connection is None or getattr(self._connection, "closed", False):
            connection = self.sql_hook.get_conn()
            connection.autocommit = True
            with connection.cursor() as cursor:
                # set_config binds the values: nothing from settings is ever spliced into SQL text.
                cursor.execute(
                    "SELECT set_config('application_name', %s, false), set_config('statement_timeout', %s, false)",
                    (self.application_name, str(self.statement_timeout_ms)),
                )
            self._connection = connection
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def records(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows of ``sql`` as dicts (column name -> value); values are bound by the driver."""
        with self._conn().cursor() as cursor:
            cursor.execute(sql, dict(parameters or {}))
            if cursor.description is None:
                return []
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def own_pid(self) -> int:
        return int(self.records("SELECT pg_backend_pid() AS pid")[0]["pid"])

    # -- actions: each on exactly the session that was read -------------------------------------------------------
    def terminate_backend(self, *, pid: int, backend_start: datetime, state: str, state_change: datetime) -> bool:
        """``pg_terminate_backend`` on ``pid`` only if it is still the same session in the same state since the
        same moment (so neither a recycled pid nor a session that has since done work is ended). True if ended."""
        rows = self.records(
            "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity "
            "WHERE pid = %(pid)s AND backend_start = %(backend_start)s AND state = %(state)s "
            "AND state_change = %(state_change)s AND pid <> pg_backend_pid()",
            {"pid": pid, "backend_start": backend_start, "state": state, "state_change": state_change},
        )
        return bool(rows and rows[0]["ended"])

    def cancel_backend(self, *, pid: int, backend_start: datetime, query_start: datetime) -> bool:
        """``pg_cancel_backend`` on ``pid`` only if it still runs the same query of the same session. True if sent."""
        rows = self.records(
            "SELECT pg_cancel_backend(pid) AS cancelled FROM pg_stat_activity "
            "WHERE pid = %(pid)s AND backend_start = %(backend_start)s AND query_start = %(query_start)s "
            "AND pid <> pg_backend_pid()",
            {"pid": pid, "backend_start": backend_start, "query_start": query_start},
        )
        return bool(rows and rows[0]["cancelled"])

    def resume_wal_replay(self) -> bool:
        """``pg_wal_replay_resume()`` on a replica whose replay is paused; False (nothing done) if it is not."""
        # pg_is_wal_replay_paused() raises on a server that is not in recovery: ask in that order.
        if not self.records("SELECT pg_is_in_recovery() AS recovery")[0]["recovery"]:
            return False
        if not self.records("SELECT pg_is_wal_replay_paused() AS paused")[0]["paused"]:
            return False
        self.records("SELECT pg_wal_replay_resume()")
        return True
