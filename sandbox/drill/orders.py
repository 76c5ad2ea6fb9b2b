"""Drill `stuck_orders`: the order processor stops on Error #12, its backlog grows, order_backlog_check restarts it.

The sandbox's orders service (sandbox/services/order_backlog_check.py) keeps an SQLite orders table, the processor's
log and a processor stand-in that processes the oldest orders after each rollout restart. The drill:

* prepare: the baseline a drill starts from: every order processed and a finished run in the log (the sandbox seeds
  a stuck processor for the demo), and business hours that hold for the next hours (see ``business_hours_around``);
* inject: the processor stops: a new run in its log repeating ``Error Processing Order. Error #12`` on one order, and
  the orders that arrived meanwhile. Time is compressed: the fault writes the state a processor stuck for
  ``STUCK_MINUTES`` leaves (the oldest order that old), so the age alert can fire in seconds;
* export: the backlog as an exporter of the orders database would (``orders_outstanding``,
  ``orders_oldest_outstanding_age_seconds``);
* recovery: no outstanding order older than the alert's limit, and the processor's latest run makes progress.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

#: The age limit of order_backlog_check's thresholds.oldest_order_age_minutes (include/config/order_backlog_check.yaml).
AGE_LIMIT_MINUTES = 120
#: How long the injected fault has (in compressed time) kept the processor stuck.
STUCK_MINUTES = 150
#: Orders waiting older than the limit (the restart stand-in processes 5 of the oldest: all of them) ...
OVERDUE_ORDERS = 5
#: ... and newer ones, still within the limit after the restart.
RECENT_ORDERS = 7
ERROR_12 = "Error Processing Order. Error #12"
#: The install-wide settings' Variable (include/config/toilless.yaml): business hours live there. Not the SOP's own
#: ``toilless_order_backlog_check``: the sandbox sets that one in Airflow's environment (AIRFLOW_VAR_...), which wins
#: over a Variable in the metadata database, so the drill could not override it on a running sandbox.
VARIABLE = "toilless_toilless"


def _line(moment: datetime, level: str, message: str) -> str:
    """A line in the processor's format (sandbox/order_backlog_check_data.py): ``2026-11-23 09:00:00,012 INFO ...``."""
    return f"{moment:%Y-%m-%d %H:%M:%S},{moment.microsecond // 1000:03d} {level} {message}"


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def business_hours_around(
    now: datetime, *, before: timedelta = timedelta(hours=1), after: timedelta = timedelta(hours=3)
) -> dict[str, Any]:
    """Business hours every day from ``now - before`` to ``now + after`` (UTC; past midnight when it must).

    The drill's outcome must not depend on the day and hour it runs: order_backlog_check restarts only inside business
    hours, so the drill sets the sandbox's install-wide business hours (Variable ``toilless_toilless``) to a window
    around the drill, as an operator would for a drill, and restores them afterwards. The policy outside business hours (developers told, no
    restart) is the SOP's own tests' business.
    """
    start, end = (now - before).astimezone(UTC), (now + after).astimezone(UTC)
    days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    return {"days": days, "start": f"{start:%H:%M}", "end": f"{end:%H:%M}", "timezone": "UTC"}


def _connect(published: dict[str, Any]) -> sqlite3.Connection:
    return sqlite3.connect(published["orders"]["database"], timeout=10)


def prepare(published: dict[str, Any], now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """The healthy baseline: every order processed, a finished run last in the log. Returns the Variable overrides."""
    now = _now(now)
    connection = _connect(published)
    try:
        with connection:
            connection.execute(
                "UPDATE orders SET status = 'processed', processed_at = ? WHERE status IN ('new', 'processing')",
                (now.isoformat(),),
            )
    finally:
        connection.close()
    start = now - timedelta(seconds=30)
    lines = [_line(start, "INFO", "Startup..."), _line(start + timedelta(seconds=1), "INFO", "All Orders processed.")]
    with Path(published["orders"]["log"]).open("a", encoding="utf-8") as handle:
        handle.write("".join(f"{line}\n" for line in lines))
    return {VARIABLE: {"business_hours": business_hours_around(now)}}


def stuck_run_lines(order: int, *, now: datetime, minutes: int = STUCK_MINUTES) -> list[str]:
    """A processor run that started ``minutes`` ago and has repeated Error #12 on ``order`` every 30 s since."""
    start = now - timedelta(minutes=minutes)
    lines = [
        _line(start, "INFO", "Startup..."),
        _line(start + timedelta(seconds=1), "INFO", f"Processing Order {order}"),
    ]
    moment = start + timedelta(seconds=5)
    while moment < now:
        lines.append(_line(moment, "ERROR", ERROR_12))
        moment += timedelta(seconds=30)
    return lines


def inject(published: dict[str, Any], now: datetime | None = None) -> str:
    """The processor stops on Error #12; the orders that arrived meanwhile wait (ages spread over the stuck time)."""
    now = _now(now)
    connection = _connect(published)
    try:
        with connection:
            first = int(connection.execute("SELECT coalesce(max(id), 0) + 1 FROM orders").fetchone()[0])
            ages = [STUCK_MINUTES - 5 * index for index in range(OVERDUE_ORDERS)]  # 150..130 min: over the limit
            ages += [60 - 8 * index for index in range(RECENT_ORDERS)]  # 60..12 min: within it
            connection.executemany(
                "INSERT INTO orders (id, customer, status, created_at, processed_at) VALUES (?, ?, ?, ?, NULL)",
                [
                    (
                        first + index,
                        f"drill-customer-{index}",
                        "processing" if index == 0 else "new",
                        (now - timedelta(minutes=age)).isoformat(),
                    )
                    for index, age in enumerate(ages)
                ],
            )
    finally:
        connection.close()
    with Path(published["orders"]["log"]).open("a", encoding="utf-8") as handle:
        handle.write("".join(f"{line}\n" for line in stuck_run_lines(first, now=now)))
    return (
        f"order processor stuck on order {first} ({ERROR_12}) for {STUCK_MINUTES} min (compressed); "
        f"{OVERDUE_ORDERS + RECENT_ORDERS} orders waiting"
    )


def backlog(published: dict[str, Any], now: datetime | None = None) -> tuple[int, float]:
    """(outstanding orders, age in seconds of the oldest outstanding one, 0 when none)."""
    now = _now(now)
    connection = _connect(published)
    try:
        count, oldest = connection.execute(
            "SELECT count(*), min(created_at) FROM orders WHERE status IN ('new', 'processing')"
        ).fetchone()
    finally:
        connection.close()
    if not oldest:
        return int(count), 0.0
    created = datetime.fromisoformat(oldest)
    created = created if created.tzinfo else created.replace(tzinfo=UTC)
    return int(count), max(0.0, (now - created).total_seconds())


def export(published: dict[str, Any]) -> dict[str, float]:
    """What an exporter of the orders database reports."""
    count, age = backlog(published)
    return {
        'orders_outstanding{service="order-processor"}': float(count),
        'orders_oldest_outstanding_age_seconds{service="order-processor"}': age,
    }


def latest_run(lines: list[str]) -> list[str]:
    """The lines of the processor's latest run (from its last ``Startup...``)."""
    starts = [index for index, line in enumerate(lines) if line.rstrip().endswith("Startup...")]
    return lines[starts[-1] :] if starts else lines


def run_progressing(lines: list[str]) -> bool:
    """The latest run processed or finished something and does not end in an error."""
    run = [line.rstrip() for line in latest_run(lines) if line.strip()]
    if not run or " ERROR " in run[-1]:
        return False
    return any(line.endswith(("Order Processed", "All Orders processed.")) for line in run)


def drained(published: dict[str, Any], now: datetime | None = None) -> bool:
    """Recovered: no outstanding order older than the limit, and the processor's latest run makes progress."""
    try:
        _, age = backlog(published, now)
        text = Path(published["orders"]["log"]).read_text(encoding="utf-8", errors="replace")
    except (OSError, sqlite3.Error, ValueError):
        return False
    return age < AGE_LIMIT_MINUTES * 60 and run_progressing(text.splitlines()[-2000:])
