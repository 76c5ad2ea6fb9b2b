"""The webhook's durable write when Airflow's metadata DB is SQLite: a spool file of the intake's own.

SQLite has one writer per database file, and its lock is not fair: while the scheduler, the DAG processor and the
running runbooks' task calls write to the metadata DB, a waiting writer polls for the lock and can lose it for its
whole 30 s busy timeout. An alert storm measured the webhook's one inbox insert at p50 210 ms, p99 30 s ("database is
locked", then retried), so Alertmanager's deliveries timed out. The webhook therefore writes an accepted delivery to
this spool (one insert, committed and fsync'd before the answer, like the inbox row it replaces; only the intake
writes here), and the worker moves spooled deliveries into the inbox table before it drains, then removes them from
the spool. A crash between the two leaves a spooled delivery that is already in the inbox: it is moved once (the
delivery's id is the inbox row's primary key), so it is still decided exactly once.

Delivery ids are the spool's AUTOINCREMENT ids, started above the inbox's highest id when the spool is opened, so
the ids the webhook hands out stay unique with a spool that is new next to an inbox that already has rows.
PostgreSQL needs none of this (row locks; the webhook inserts into the inbox directly).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

#: The spool's file, next to the SQLite metadata DB (the same disk and backup as the inbox it feeds).
SPOOL_FILE = "toilless_intake_spool.db"
#: Longer than the metadata DB's: only the intake writes here, one short statement at a time.
BUSY_TIMEOUT_SECONDS = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    receiver TEXT NOT NULL,
    alerts INTEGER NOT NULL,
    payload_json TEXT NOT NULL,
    received_at REAL NOT NULL
)
"""
_SELECT = "SELECT id, receiver, alerts, payload_json, received_at FROM spool"


@dataclass(frozen=True)
class Spooled:
    """An accepted delivery not yet moved into the inbox."""

    id: int
    receiver: str
    alerts: int
    payload_json: str
    received_at: float


def spool_path(database_url: object) -> Path | None:
    """Where the spool of a metadata DB at ``database_url`` lives; None unless it is a SQLite file."""
    backend = getattr(database_url, "get_backend_name", lambda: "")()
    database = getattr(database_url, "database", None)
    if backend != "sqlite" or not database or database == ":memory:" or str(database).startswith("file:"):
        return None
    return Path(database).resolve().parent / SPOOL_FILE


class Spool:
    """The spool file. ``floor`` gives the inbox's highest delivery id (read once, when the spool is first used)."""

    def __init__(self, path: Path, *, floor: Callable[[], int]) -> None:
        self.path = path
        self._floor = floor
        self._ready = False
        # One writer per process at a time (the webhook's threads and the worker); other processes wait at SQLite.
        self._lock = threading.Lock()

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        with closing(connection):
            # FULL: the WAL is fsync'd at every commit, so an answered delivery survives a power cut (WAL's NORMAL
            # does not). A per-connection setting.
            connection.execute("PRAGMA synchronous=FULL")
            if not self._ready:
                self._prepare(connection)
            yield connection

    def _prepare(self, connection: sqlite3.Connection) -> None:
        connection.execute("PRAGMA journal_mode=WAL")  # kept in the file: the worker's reads never block a put
        connection.execute(_SCHEMA)
        floor = int(self._floor())
        with _immediate(connection):
            # Raise the AUTOINCREMENT counter to the inbox's highest id (never lower it): new ids cannot collide.
            connection.execute(
                "INSERT INTO sqlite_sequence (name, seq) SELECT 'spool', 0 "
                "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'spool')"
            )
            connection.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'spool' AND seq < ?", (floor, floor))
        self._ready = True

    def put(self, *, receiver: str, alerts: int, body: str) -> int:
        """Write one accepted delivery (committed when this returns); returns its delivery id."""
        with self._lock, self._connection() as connection:
            cursor = connection.execute(
                "INSERT INTO spool (receiver, alerts, payload_json, received_at) VALUES (?, ?, ?, ?)",
                (receiver, alerts, body, time.time()),
            )
            return int(cursor.lastrowid or 0)

    def pending(self, limit: int) -> list[Spooled]:
        """The oldest spooled deliveries, at most ``limit``."""
        if not self.path.exists():
            return []
        with self._connection() as connection:
            rows = connection.execute(f"{_SELECT} ORDER BY id LIMIT ?", (limit,)).fetchall()
        return [Spooled(*row) for row in rows]

    def get(self, delivery: int) -> Spooled | None:
        if not self.path.exists():
            return None
        with self._connection() as connection:
            row = connection.execute(f"{_SELECT} WHERE id = ?", (delivery,)).fetchone()
        return Spooled(*row) if row else None

    def count(self) -> int:
        if not self.path.exists():
            return 0
        with self._connection() as connection:
            return int(connection.execute("SELECT count(*) FROM spool").fetchone()[0])

    def clear(self) -> None:
        """Forget every spooled delivery (tests reset the intake's state between them)."""
        if self.path.exists():
            with self._lock, self._connection() as connection:
                connection.execute("DELETE FROM spool")

    def remove(self, deliveries: list[int]) -> None:
        """Forget deliveries the inbox holds now (committed there first)."""
        if not deliveries:
            return
        with self._lock, self._connection() as connection, _immediate(connection):
            connection.executemany("DELETE FROM spool WHERE id = ?", [(delivery,) for delivery in deliveries])


@contextmanager
def _immediate(connection: sqlite3.Connection) -> Iterator[None]:
    """One write transaction on an autocommit connection, taking the write lock at its start."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
