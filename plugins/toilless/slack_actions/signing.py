"""Slack's request signing (version ``v0``), checked before anything in a request is believed. Pure.

Slack signs every request with the app's signing secret: ``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{raw body}``,
in the ``X-Slack-Signature`` header, the timestamp in ``X-Slack-Request-Timestamp``. A request older than five
minutes is refused (Slack's own advice against replays), and within those five minutes the same signed request is
accepted once (:class:`ReplayGuard`).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections import OrderedDict

VERSION = "v0"
MAX_AGE_SECONDS = 300
#: A timestamp this far in the future is as suspect as an old one (clock skew allowance included).
MAX_FUTURE_SECONDS = 60


class SignatureError(Exception):
    """The request is not provably from Slack. The message never contains the secret or the expected signature."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Slack-Signature`` Slack sends for ``body`` at ``timestamp`` (used by tests and the press CLI)."""
    base = f"{VERSION}:{timestamp}:".encode() + body
    return f"{VERSION}=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify(
    *,
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
    max_age: float = MAX_AGE_SECONDS,
) -> int:
    """Raise :class:`SignatureError` unless ``signature`` is Slack's for ``body`` and ``timestamp`` is recent.

    :return: the timestamp as an integer (seconds since the epoch).
    """
    if not secret:
        raise SignatureError("no signing secret configured")
    if not timestamp or not signature:
        raise SignatureError("missing X-Slack-Request-Timestamp or X-Slack-Signature")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureError("malformed X-Slack-Request-Timestamp")
    sent = int(timestamp)
    if now - sent > max_age:
        raise SignatureError(f"request timestamp is {now - sent:.0f} s old (limit {max_age:g} s)")
    if sent - now > MAX_FUTURE_SECONDS:
        raise SignatureError("request timestamp is in the future")
    # Compared as bytes in constant time, whatever the header holds (non-ASCII included).
    if not hmac.compare_digest(sign(secret, timestamp, body).encode(), signature.encode("utf-8", "replace")):
        raise SignatureError("signature does not match")
    return sent


class ReplayGuard:
    """Remembers the signatures seen in the last ``max_age`` seconds: the same signed request is accepted once.

    In memory, per API server process: a replay sent to another process passes this guard, and then decides
    nothing either, because every answer is written once (the HITL row, the incident's ack) and a second press
    only reads what was decided. Bounded: at most ``capacity`` signatures (oldest dropped first).
    """

    def __init__(self, *, max_age: float = MAX_AGE_SECONDS + MAX_FUTURE_SECONDS, capacity: int = 100_000) -> None:
        self._max_age = max_age
        self._capacity = capacity
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, signature: str, now: float) -> bool:
        """True the first time ``signature`` is seen (and remembers it); False for a replay."""
        with self._lock:
            while self._seen:
                oldest, seen_at = next(iter(self._seen.items()))
                if now - seen_at <= self._max_age and len(self._seen) < self._capacity:
                    break
                del self._seen[oldest]
            if signature in self._seen:
                return False
            self._seen[signature] = now
            return True
