"""Realistic application logs for the log_rotation demo (``make run``) and its benchmark.

Two kinds, as on the SOP's log mount: ``app`` (a Java-style web application: access lines, slow queries, warnings and
the odd stack trace) and ``orders`` (the order processor of SOPS.md: ``Startup...``, ``Processing Order 4``,
``Order Processed``, ``All Orders processed.``, ``Error Processing Order. Error #12``). Deterministic for a seed, and
varied enough that compression ratios are those of real logs, not of repeated text.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

_PATHS = ("/api/orders", "/api/orders/{id}", "/api/customers/{id}", "/api/cart", "/api/checkout", "/health", "/login")
_PATH_WEIGHTS = (30, 25, 15, 10, 5, 10, 5)
_METHODS = ("GET", "POST", "PUT", "DELETE")
_METHOD_WEIGHTS = (80, 12, 5, 3)
_STATUSES = (200,) * 30 + (201, 204, 301, 304, 400, 401, 403, 404, 404, 409, 500, 502, 503)
_LOGGERS = ("c.e.shop.OrderController", "c.e.shop.CartService", "c.e.shop.PaymentClient", "o.h.engine.jdbc.spi")
_AGENTS = ("Mozilla/5.0 (X11; Linux x86_64)", "okhttp/4.12.0", "kube-probe/1.29", "python-requests/2.32.3")
_AGENT_WEIGHTS = (50, 30, 15, 5)
_STACK = (
    "java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available, request timed out after "
    "30000ms.\n"
    "\tat com.zaxxer.hikari.pool.HikariPool.createTimeoutException(HikariPool.java:696)\n"
    "\tat com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:181)\n"
    "\tat com.example.shop.OrderRepository.findOpen(OrderRepository.java:88)\n"
)


def app_lines(rng: random.Random, start: datetime) -> Iterator[str]:
    """Endless lines of a web application's log, each ending in a newline."""
    moment = start
    while True:
        moment += timedelta(microseconds=rng.randrange(200, 40_000))
        stamp = moment.strftime("%Y-%m-%d %H:%M:%S,") + f"{moment.microsecond // 1000:03d}"
        thread = f"http-nio-8080-exec-{rng.randrange(1, 51)}"
        roll = rng.random()
        if roll < 0.9:
            # Real traffic is skewed: a few paths, users and customers make most requests (log-uniform ids),
            # latencies and sizes are log-normal; trace ids are random.
            path = rng.choices(_PATHS, _PATH_WEIGHTS)[0].replace("{id}", str(int(250_000 ** rng.random())))
            status = rng.choice(_STATUSES)
            yield (
                f"{stamp} INFO  [{thread}] {_LOGGERS[0]} - {rng.choices(_METHODS, _METHOD_WEIGHTS)[0]} {path} {status} "
                f"{int(rng.lognormvariate(3.5, 1.0))}ms bytes={int(rng.lognormvariate(7.5, 1.2))} "
                f"user=u-{int(90_000 ** rng.random()):05d} trace={rng.getrandbits(64):016x} "
                f'agent="{rng.choices(_AGENTS, _AGENT_WEIGHTS)[0]}"\n'
            )
        elif roll < 0.97:
            # A log line quoting a query, not a query.
            yield (
                f"{stamp} WARN  [{thread}] {rng.choice(_LOGGERS)} - slow query took {rng.randrange(500, 9000)}ms: "  # noqa: S608
                f"SELECT o.id, o.status FROM orders o WHERE o.customer_id = {rng.randrange(1, 90_000)} "
                f"AND o.created_at > now() - interval '{rng.randrange(1, 30)} days'\n"
            )
        else:
            yield f"{stamp} ERROR [{thread}] {rng.choice(_LOGGERS)} - request failed order={rng.randrange(1, 250_000)}\n"
            yield _STACK


def order_lines(rng: random.Random, start: datetime) -> Iterator[str]:
    """Endless lines of the order processor's log (SOPS.md, "Order-processor backlog")."""
    moment = start
    order = rng.randrange(1, 1000)
    while True:
        moment += timedelta(seconds=1)
        yield f"{moment:%Y-%m-%d %H:%M:%S} INFO Startup...\n"
        for _ in range(rng.randrange(4, 60)):
            moment += timedelta(milliseconds=rng.randrange(1500, 15_000))
            yield f"{moment:%Y-%m-%d %H:%M:%S} INFO Processing Order {order}\n"
            if rng.random() < 0.03:
                for _ in range(rng.randrange(1, 6)):
                    moment += timedelta(seconds=rng.randrange(5, 30))
                    yield f"{moment:%Y-%m-%d %H:%M:%S} ERROR Error Processing Order. Error #{rng.choice((7, 9, 12))}\n"
            moment += timedelta(milliseconds=rng.randrange(10_000, 15_000))
            yield f"{moment:%Y-%m-%d %H:%M:%S} INFO Order Processed\n"
            order += 1
        yield f"{moment:%Y-%m-%d %H:%M:%S} INFO All Orders processed.\n"
        moment += timedelta(minutes=rng.randrange(30, 70))


def write_log(path: Path, kind: str, size_bytes: int, *, seed: int = 4, start: datetime | None = None) -> int:
    """Append about ``size_bytes`` of ``kind`` ("app" or "orders") lines to ``path``; returns the bytes written."""
    rng = random.Random(seed)
    start = start or datetime(2026, 11, 21, 0, 0, tzinfo=UTC)
    lines = app_lines(rng, start) if kind == "app" else order_lines(rng, start)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as handle:
        return write_lines(handle, lines, size_bytes)


def write_lines(handle: BinaryIO, lines: Iterable[str], size_bytes: int) -> int:
    """Write lines from an endless generator to ``handle`` in 1 MiB batches until about ``size_bytes``; returns the
    bytes written."""
    written = 0
    batch: list[str] = []
    batch_bytes = 0
    for line in lines:
        batch.append(line)
        batch_bytes += len(line)
        if batch_bytes >= 1 << 20 or written + batch_bytes >= size_bytes:
            data = "".join(batch).encode()
            handle.write(data)
            written += len(data)
            batch, batch_bytes = [], 0
            if written >= size_bytes:
                return written
    return written
