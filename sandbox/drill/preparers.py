"""What a scenario sets up before its fault (scenario key ``prepare``): the sandbox's healthy baseline and the Airflow
Variable overrides the drill needs to be deterministic (business hours).

A preparer gets the sandbox's published facts and returns ``{variable_key: override}``; the runner merges each
override into the Variable's current JSON for the drill and puts the original value back afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sandbox.drill import orders

Preparer = Callable[[dict[str, Any]], dict[str, dict[str, Any]]]


def _orders(published: dict[str, Any], now: datetime | None = None) -> dict[str, dict[str, Any]]:
    return orders.prepare(published, now)


PREPARERS: dict[str, Preparer] = {
    "orders_baseline": _orders,
}


def merged(current: Any, override: dict[str, Any]) -> dict[str, Any]:
    """``override`` merged into ``current`` key by key (nested mappings merged, everything else replaced)."""
    result = dict(current) if isinstance(current, dict) else {}
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result
