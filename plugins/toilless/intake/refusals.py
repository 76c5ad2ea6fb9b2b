"""How often the intake tells Slack about deliveries it refused. Pure, no Airflow.

Alertmanager drops a notification answered 4xx, so a refusal is worth a message; but a misconfigured sender refuses
hundreds of times a minute (352 messages in 90 s were seen). One message per receiver per interval goes out; the
refusals in between are counted and the next message says how many there were.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

#: Receivers remembered at once: the receiver name comes from the (authenticated) payload, so it is bounded.
MAX_RECEIVERS = 1000


@dataclass
class _Window:
    posted_at: float
    suppressed: int = 0


class RefusalLimiter:
    """Per receiver: the first refusal in ``interval`` seconds is posted, the rest are counted. Thread-safe."""

    def __init__(self, interval: float = 600.0) -> None:
        self.interval = interval
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def admit(self, receiver: str, now: float) -> int | None:
        """None: do not post (counted). Otherwise post now, saying how many refusals were not posted before it."""
        with self._lock:
            window = self._windows.get(receiver)
            if window is not None and now - window.posted_at < self.interval:
                window.suppressed += 1
                return None
            suppressed = window.suppressed if window is not None else 0
            self._windows.pop(receiver, None)
            if len(self._windows) >= MAX_RECEIVERS:
                oldest = min(self._windows, key=lambda name: self._windows[name].posted_at)
                del self._windows[oldest]
            self._windows[receiver] = _Window(posted_at=now)
            return suppressed
