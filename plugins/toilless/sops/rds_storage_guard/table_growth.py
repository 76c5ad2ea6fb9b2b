"""Where the space goes: the largest tables of a database and how fast each grew since the last look.

The RDS storage guard's "Data Management" hint. The database is reached through an Airflow Connection (any
common-sql DbApiHook: postgres, mysql, sqlite); the last sizes are kept in the Variable :data:`HISTORY_VARIABLE`.
Call inside tasks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from toilless.common.alerting import first_line
from toilless.common.config import include_path

log = logging.getLogger(__name__)

HISTORY_VARIABLE = "rds_storage_guard_table_sizes"
#: Connection type -> SQL dialect file under include/sql/rds_storage_guard/.
DIALECTS = {"postgres": "postgres", "postgresql": "postgres", "mysql": "mysql", "sqlite": "sqlite"}


def table_growth(previous: Mapping[str, Any] | None, current: Mapping[str, int], now: float) -> list[dict[str, Any]]:
    """Pure: current sizes, largest first, with bytes/day since ``previous`` (``{"taken_at", "tables"}``)."""
    before = (previous or {}).get("tables") or {}
    elapsed_days = (now - float((previous or {}).get("taken_at") or now)) / 86400.0
    rows = []
    for name, size in sorted(current.items(), key=lambda item: item[1], reverse=True):
        growth = None
        if name in before and elapsed_days > 0:
            growth = (size - int(before[name])) / elapsed_days
        rows.append({"table": name, "bytes": int(size), "growth_bytes_per_day": growth})
    return rows


def largest_tables(conn_id: str, limit: int) -> dict[str, int]:
    """``{table: total bytes}`` for the ``limit`` largest tables behind a database Connection."""
    from airflow.sdk import BaseHook

    connection = BaseHook.get_connection(conn_id)
    dialect = DIALECTS.get(connection.conn_type or "")
    if dialect is None:
        raise ValueError(
            f"Connection {conn_id} has type {connection.conn_type!r}; supported: {', '.join(sorted(DIALECTS))}"
        )
    sql = include_path("sql", "rds_storage_guard", f"largest_tables.{dialect}.sql").read_text(encoding="utf-8")
    hook = connection.get_hook()
    records = hook.get_records(sql, parameters=(int(limit),))
    return {str(name): int(size or 0) for name, size in records}


def inspect_instances(instance_ids: Iterable[str], conn_id_template: str, limit: int) -> dict[str, Any]:
    """Per instance: the largest tables and their growth, or why they are not known (no Connection, an error).

    A database that cannot be read does not fail the run: the storage report matters more than this hint, and it
    says what went wrong.
    """
    from airflow.exceptions import AirflowNotFoundException
    from airflow.sdk import BaseHook

    from toilless.common.state import read_state, write_state

    # Unreadable history: start it again (a growth hint, not the job).
    history = read_state(HISTORY_VARIABLE) or {}
    now = time.time()
    found: dict[str, Any] = {}
    changed = False
    for instance_id in instance_ids:
        conn_id = conn_id_template.format(instance_id=instance_id)
        try:
            BaseHook.get_connection(conn_id)
        except AirflowNotFoundException:
            found[instance_id] = {"conn_id": conn_id, "configured": False}
            continue
        try:
            sizes = largest_tables(conn_id, limit)
        except Exception as err:  # a hint, not the job: report the error instead of failing the storage report
            log.warning("Could not read table sizes of %s through %s: %s", instance_id, conn_id, first_line(err))
            found[instance_id] = {"conn_id": conn_id, "configured": True, "error": first_line(err)}
            continue
        found[instance_id] = {
            "conn_id": conn_id,
            "configured": True,
            "tables": table_growth(history.get(instance_id), sizes, now),
        }
        history[instance_id] = {"taken_at": now, "tables": sizes}
        changed = True
    if changed:
        write_state(HISTORY_VARIABLE, history)
    return found
