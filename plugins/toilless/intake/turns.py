"""Turns at SQLite's one writer within the API server, the webhook's insert first.

SQLite lets one connection write at a time, so the intake serialises its own writes in the process instead of
failing on "database is locked". A plain lock is not fair: the worker, deciding the inbox one alert per
transaction, released it and took it straight back while a webhook thread was still being woken, so during a storm
a delivery's one insert (what Alertmanager waits for) queued behind a long series of decisions (what nobody waits
for). Here a waiting insert always goes next; the worker's writes take the turns no insert is waiting for.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class WriteTurns:
    """One writer at a time; ``urgent`` writers waiting go before every other waiter."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._writing = False
        self._urgent_waiting = 0
        self._others_waiting = 0

    @contextmanager
    def turn(self, *, urgent: bool) -> Iterator[None]:
        with self._changed:
            if urgent:
                self._urgent_waiting += 1
                try:
                    while self._writing:
                        self._changed.wait()
                finally:
                    self._urgent_waiting -= 1
            else:
                self._others_waiting += 1
                try:
                    while self._writing or self._urgent_waiting:
                        self._changed.wait()
                finally:
                    self._others_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._changed:
                self._writing = False
                self._changed.notify_all()

    def waiting(self) -> tuple[int, int]:
        """How many writers wait now: (urgent, others)."""
        with self._changed:
            return self._urgent_waiting, self._others_waiting
