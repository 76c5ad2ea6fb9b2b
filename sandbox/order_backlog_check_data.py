"""Demo data for the order-processor backlog SOP: an orders table with a backlog, and processor logs.

The logs are written in the processor's real format (SOPS.md, "Order-processor backlog")::

    2026-11-23 09:00:00,012 INFO Startup...
    2026-11-23 09:00:01,100 INFO Processing Order 4
    2026-11-23 09:00:13,420 INFO Order Processed
    2026-11-23 09:00:14,002 ERROR Error Processing Order. Error #12
    2026-11-23 09:45:10,530 INFO All Orders processed.

Used by ``make run`` (sandbox/services/order_backlog_check.py), the tests and the benchmark.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_SQL = PROJECT_ROOT / "include" / "sql" / "order_backlog_check" / "orders_schema.sql"
OUTSTANDING = ("new", "processing")
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
#: NULL in PostgreSQL's COPY text format.
NULL = "\\N"


def schema_statements() -> list[str]:
    """The statements of include/sql/order_backlog_check/orders_schema.sql (the table and the backlog index)."""
    text = "\n".join(
        line for line in SCHEMA_SQL.read_text(encoding="utf-8").splitlines() if not line.strip().startswith("--")
    )
    return [statement.strip() for statement in text.split(";") if statement.strip()]


def generate_orders(
    count: int, *, outstanding: int, now: datetime, oldest_minutes: float = 180.0, seed: int = 7, start_id: int = 1
) -> Iterable[tuple[int, str, str, datetime, datetime | None]]:
    """Rows (id, customer, status, created_at, processed_at): ``count - outstanding`` processed orders spread
    over the past year, then ``outstanding`` open ones created within the last ``oldest_minutes``."""
    rng = random.Random(seed)
    processed = count - outstanding
    year = timedelta(days=365).total_seconds()
    for offset in range(processed):
        created = now - timedelta(seconds=year * (processed - offset) / max(processed, 1)) - timedelta(hours=3)
        yield (
            start_id + offset,
            f"customer-{rng.randrange(10_000)}",
            "processed",
            created,
            created + timedelta(seconds=15),
        )
    for offset in range(outstanding):
        # The first outstanding order is the oldest one, exactly ``oldest_minutes`` old.
        age = oldest_minutes * (outstanding - offset) / outstanding if outstanding else 0
        status = "processing" if offset < 8 else "new"
        yield (
            start_id + processed + offset,
            f"customer-{rng.randrange(10_000)}",
            status,
            now - timedelta(minutes=age),
            None,
        )


def seed_sqlite(path: Path, *, outstanding: int, now: datetime | None = None, total: int | None = None) -> None:
    """Create (or refill) a SQLite orders database. Timestamps are stored as UTC ISO-8601 text."""
    import sqlite3

    now = now or datetime.now(UTC)
    total = total if total is not None else outstanding + 500
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as connection:
        for statement in schema_statements():
            connection.execute(statement)
        connection.execute("DELETE FROM orders")
        connection.executemany(
            "INSERT INTO orders (id, customer, status, created_at, processed_at) VALUES (?, ?, ?, ?, ?)",
            (
                (order_id, customer, status, created.isoformat(), processed.isoformat() if processed else None)
                for order_id, customer, status, created, processed in generate_orders(
                    total, outstanding=outstanding, now=now
                )
            ),
        )
    connection.close()


def seed_postgres(
    connection: Any, *, total: int, outstanding: int, now: datetime | None = None, oldest_minutes: float = 180.0
) -> None:
    """Create the schema and load orders into PostgreSQL (a psycopg2 connection) with COPY, fast enough for 1M."""
    import io

    now = now or datetime.now(UTC)
    with connection.cursor() as cursor:
        for statement in schema_statements():
            cursor.execute(statement)
        cursor.execute("TRUNCATE orders")
        batch = io.StringIO()
        orders = generate_orders(total, outstanding=outstanding, now=now, oldest_minutes=oldest_minutes)
        for order_id, customer, status, created, processed in orders:
            processed_text = processed.isoformat() if processed else NULL
            batch.write(f"{order_id}\t{customer}\t{status}\t{created.isoformat()}\t{processed_text}\n")
            if batch.tell() > 8 << 20:
                batch.seek(0)
                cursor.copy_expert("COPY orders (id, customer, status, created_at, processed_at) FROM STDIN", batch)
                batch = io.StringIO()
        batch.seek(0)
        cursor.copy_expert("COPY orders (id, customer, status, created_at, processed_at) FROM STDIN", batch)
        cursor.execute("ANALYZE orders")
    connection.commit()


def process_postgres_orders(dsn: dict[str, Any], count: int) -> None:
    """Mark the ``count`` oldest outstanding orders processed, as the processor does (stand-ins use it)."""
    import psycopg2

    connection = psycopg2.connect(**dsn)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(
                "UPDATE orders SET status = 'processed', processed_at = now() WHERE id IN "
                "(SELECT id FROM orders WHERE status IN ('new', 'processing') ORDER BY created_at LIMIT %(count)s)",
                {"count": count},
            )
    finally:
        connection.close()


# -- processor logs ------------------------------------------------------------------------------------------
def _line(moment: datetime, level: str, message: str) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S},{moment.microsecond // 1000:03d} {level} {message}"


def processor_log(scenario: str, *, now: datetime, first_order: int = 1, seconds_per_order: float = 12.0) -> list[str]:
    """Lines of a processor log ending at about ``now`` for one scenario.

    healthy: a run that processed its orders and finished; overloaded: a run still making steady progress
    (the backlog decides "overloaded"); errors: progress with a few different errors; stuck: the same
    ``Error #12`` on one order again and again; crashed_silent: a run that stopped writing 3 hours ago.
    """
    lines: list[str] = []
    # An older, finished run first: reading must start at the *latest* Startup.
    earlier = now - timedelta(hours=2, minutes=5)
    lines.append(_line(earlier, "INFO", "Startup..."))
    lines.append(_line(earlier + timedelta(seconds=1), "INFO", "Processing Order 900"))
    lines.append(_line(earlier + timedelta(seconds=13), "INFO", "Order Processed"))
    lines.append(_line(earlier + timedelta(seconds=14), "INFO", "All Orders processed."))
    if scenario == "crashed_silent":
        start = now - timedelta(hours=3)
        lines = lines[:0]
        lines.append(_line(start - timedelta(hours=1), "INFO", "Startup..."))
        lines.append(_line(start - timedelta(hours=1) + timedelta(seconds=2), "INFO", "All Orders processed."))
    else:
        start = now - timedelta(minutes=20)
    lines.append(_line(start, "INFO", "Startup..."))
    moment = start + timedelta(seconds=1)
    order = first_order
    processed_orders = {"healthy": 12, "overloaded": 60, "errors": 40, "stuck": 10, "crashed_silent": 5}[scenario]
    step = seconds_per_order / 8  # 8 slots work in parallel: the log advances 1/8 of an order's time per order
    if scenario == "overloaded":
        step = (now - timedelta(minutes=1) - moment).total_seconds() / processed_orders
    for index in range(processed_orders):
        lines.append(_line(moment, "INFO", f"Processing Order {order}"))
        moment += timedelta(seconds=step)
        if scenario == "errors" and index % 13 == 5:
            lines.append(_line(moment, "ERROR", f"Error Processing Order. Error #{7 + index % 3}"))
        lines.append(_line(moment, "INFO", "Order Processed"))
        order += 1
    if scenario == "healthy":
        lines.append(_line(moment + timedelta(seconds=1), "INFO", "All Orders processed."))
    if scenario == "stuck":
        lines.append(_line(moment, "INFO", f"Processing Order {order}"))
        error_at = moment + timedelta(seconds=5)
        while error_at < now:
            lines.append(_line(error_at, "ERROR", "Error Processing Order. Error #12"))
            error_at += timedelta(seconds=30)
    return lines


def recovery_lines(*, start: datetime, first_order: int, orders: int = 5) -> list[str]:
    """What a restarted processor writes: a new Startup and progress."""
    lines = [_line(start, "INFO", "Startup...")]
    moment = start
    for order in range(first_order, first_order + orders):
        moment += timedelta(seconds=1)
        lines.append(_line(moment, "INFO", f"Processing Order {order}"))
        moment += timedelta(seconds=2)
        lines.append(_line(moment, "INFO", "Order Processed"))
    return lines


def write_log(path: Path, lines: Iterable[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


class ProcessorStandIn:
    """Plays the order processor's part in a Kubernetes emulator: after each rollout restart of its Deployment,
    a new run appears in its log and a few orders get processed, as the real processor would do.

    ``process_orders(n)`` marks the ``n`` oldest outstanding orders processed in whatever database is used.
    """

    def __init__(
        self,
        k8s: Any,
        *,
        namespace: str,
        deployment: str,
        log_path: Path,
        process_orders: Callable[[int], None],
        orders_per_restart: int = 5,
        poll_seconds: float = 0.2,
    ) -> None:
        self.k8s = k8s
        self.namespace = namespace
        self.deployment = deployment
        self.log_path = log_path
        self.process_orders = process_orders
        self.orders_per_restart = orders_per_restart
        self.poll_seconds = poll_seconds
        self.restarts_seen = 0
        self.recovered = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="processor-stand-in", daemon=True)

    def start(self) -> ProcessorStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def __enter__(self) -> ProcessorStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _restarted_at(self) -> str | None:
        template = self.k8s.deployment(self.namespace, self.deployment)["spec"]["template"]
        return (template.get("metadata", {}).get("annotations") or {}).get(RESTARTED_AT)

    def _watch(self) -> None:
        last = self._restarted_at()
        while not self._stop.wait(self.poll_seconds):
            try:
                current = self._restarted_at()
            except Exception:  # the emulator is going away; nothing to play any more
                return
            if current == last:
                continue
            last = current
            self.process_orders(self.orders_per_restart)
            with self.log_path.open("a", encoding="utf-8") as handle:
                for line in recovery_lines(
                    start=datetime.now(UTC), first_order=10_000 + self.restarts_seen, orders=self.orders_per_restart
                ):
                    handle.write(line + "\n")
            self.restarts_seen += 1
            self.recovered.set()
