"""Where the space goes: the largest tables of a database and how fast each grew since the last look.

The RDS storage guard's "Data Management" hint. Pure: ``steps.inspect_table_growth`` reads the sizes through the
database Connection (any common-sql DbApiHook: postgres, mysql, sqlite) and keeps the last ones in the run state
:data:`HISTORY_VARIABLE`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
