"""The orders database via an Airflow SQL Connection (PostgreSQL in production, SQLite in the sandbox)."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from toilless.sops.order_backlog_check.verdict import Backlog

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

log = logging.getLogger(__name__)

_NAMED_PARAMETER = re.compile(r"%\((\w+)\)s")
#: Connection types whose DB-API driver takes ``:name`` placeholders instead of ``%(name)s``.
_COLON_STYLE = {"sqlite", "oracle"}


def load_query(path: Path) -> str:
    """The query text without ``--`` comment lines (they name placeholders a driver would try to fill)."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.strip().startswith("--")]
    return "\n".join(lines).strip().rstrip(";")


def to_driver_style(sql: str, conn_type: str) -> str:
    """Rewrite ``%(name)s`` placeholders to the driver's paramstyle. Values are still bound by the driver."""
    if conn_type in _COLON_STYLE:
        return _NAMED_PARAMETER.sub(r":\1", sql)
    return sql


class OrdersDbHook(BaseHook):
    """Measures the order backlog with the query kept in include/sql/.

    :param orders_conn_id: an Airflow SQL Connection (``postgres``, ``sqlite``, ...) to the orders database.
    :param sql_path: the backlog query file; its only parameter is ``overdue_before``.
    """

    conn_name_attr = "orders_conn_id"
    default_conn_name = "orders_db"
    hook_name = "Orders database"

    def __init__(self, *, orders_conn_id: str = default_conn_name, sql_path: Path) -> None:
        super().__init__()
        self.orders_conn_id = orders_conn_id
        self.sql_path = sql_path

    @cached_property
    def connection(self) -> Any:
        return self.get_connection(self.orders_conn_id)

    @cached_property
    def sql_hook(self) -> DbApiHook:
        hook = self.connection.get_hook()
        if not hasattr(hook, "get_records"):
            raise TypeError(f"connection {self.orders_conn_id} ({self.connection.conn_type}) is not a SQL database")
        return hook

    def measure_backlog(self, *, now: datetime, oldest_age_minutes: float) -> Backlog:
        """Outstanding orders, the oldest one's creation time, and how many are older than the limit."""
        conn_type = self.connection.conn_type or ""
        sql = to_driver_style(load_query(self.sql_path), conn_type)
        overdue_before = now.astimezone(UTC) - timedelta(minutes=oldest_age_minutes)
        parameters = {"overdue_before": _bind_value(overdue_before, conn_type)}
        rows = self.sql_hook.get_records(sql, parameters=parameters)
        if not rows:
            raise RuntimeError(f"backlog query {self.sql_path.name} returned no row")
        outstanding, oldest, overdue = rows[0][:3]
        backlog = Backlog(
            outstanding=int(outstanding or 0),
            oldest_created_at=_as_datetime(oldest),
            overdue=int(overdue or 0),
        )
        log.info(
            "Backlog in %s: %s outstanding, oldest created %s, %s overdue",
            self.orders_conn_id,
            backlog.outstanding,
            backlog.oldest_created_at,
            backlog.overdue,
        )
        return backlog


def _bind_value(moment: datetime, conn_type: str) -> Any:
    # SQLite has no timestamp type: the schema stores UTC ISO-8601 text, which compares in time order.
    return moment.isoformat() if conn_type == "sqlite" else moment


def _as_datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
