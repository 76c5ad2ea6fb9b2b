"""How often the intake tells Slack about deliveries it refused. Pure, no Airflow.

Alertmanager drops a notification answered 4xx, so a refusal is worth a message; but a misconfigured sender refuses
hundreds of times a minute (352 messages in 90 s were seen). One message per receiver per interval goes out; the
refusals in between are counted and the next message says how many there were. The receiver name is the sender's
to choose, so on top of that at most :data:`MAX_POSTS_PER_INTERVAL` messages go out per interval whatever the
receivers (a sender varying ``receiver`` would otherwise get one message per refusal); the refusals held back by that
bound are counted into the next message that goes out.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

#: Receivers remembered at once: the receiver name comes from the (authenticated) payload, so it is bounded.
MAX_RECEIVERS = 1000
#: Messages about refusals per interval, all receivers together.
MAX_POSTS_PER_INTERVAL = 5


@dataclass
class _Window:
    posted_at: float
    suppressed: int = 0


class RefusalLimiter:
    """Per receiver: the first refusal in ``interval`` seconds is posted, the rest are counted. Thread-safe."""

    def __init__(self, interval: float = 600.0, max_posts: int = MAX_POSTS_PER_INTERVAL) -> None:
        self.interval = interval
        self.max_posts = max_posts
        self._windows: dict[str, _Window] = {}
        self._posted: deque[float] = deque()
        self._held_back = 0
        self._lock = threading.Lock()

    def admit(self, receiver: str, now: float) -> int | None:
        """None: do not post (counted). Otherwise post now, saying how many refusals were not posted before it."""
        with self._lock:
            window = self._windows.get(receiver)
            if window is not None and now - window.posted_at < self.interval:
                window.suppressed += 1
                return None
            while self._posted and now - self._posted[0] >= self.interval:
                self._posted.popleft()
            if len(self._posted) >= self.max_posts:
                self._held_back += 1
                return None
            suppressed = (window.suppressed if window is not None else 0) + self._held_back
            self._held_back = 0
            self._posted.append(now)
            self._windows.pop(receiver, None)
            if len(self._windows) >= MAX_RECEIVERS:
                oldest = min(self._windows, key=lambda name: self._windows[name].posted_at)
                del self._windows[oldest]
            self._windows[receiver] = _Window(posted_at=now)
            return suppressed
