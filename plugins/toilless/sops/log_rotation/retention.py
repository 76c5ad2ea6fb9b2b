"""Which archives are beyond retention. Pure: takes a listing, returns decisions.

Retention is per live file (``app.log``'s archives are counted apart from ``error.log``'s). An archive is kept
while it is within every configured limit, counting from the newest: younger than ``max_age_days``, among the
newest ``max_archives``, and within ``max_total_bytes`` together with the newer ones. Only complete archives
this engine made are ever considered; pending (uncompressed) rotated files and foreign files are not in the
listing at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from toilless.sops.log_rotation.settings import Retention


@dataclass(frozen=True)
class Archive:
    path: str
    live: str  # the live file it came from (directory + name): the retention group
    rotated_at: datetime
    seq: int
    size: int


@dataclass(frozen=True)
class Expired:
    archive: Archive
    reason: str


def select_expired(archives: list[Archive], retention: Retention, now: datetime) -> list[Expired]:
    """The archives to delete and why, oldest reasons first per group; the rest are kept."""
    groups: dict[str, list[Archive]] = {}
    for archive in archives:
        groups.setdefault(archive.live, []).append(archive)
    expired: list[Expired] = []
    for group in groups.values():
        newest_first = sorted(group, key=lambda item: (item.rotated_at, item.seq), reverse=True)
        total = 0
        for index, archive in enumerate(newest_first):
            total += archive.size
            reason = _reason(archive, index, total, retention, now)
            if reason:
                expired.append(Expired(archive, reason))
    return expired


def _reason(archive: Archive, index: int, total: int, retention: Retention, now: datetime) -> str | None:
    if retention.max_age_days is not None and now - archive.rotated_at > timedelta(days=retention.max_age_days):
        return f"older than {retention.max_age_days:g} days"
    if retention.max_archives is not None and index >= retention.max_archives:
        return f"beyond the newest {retention.max_archives} archives"
    if retention.max_total_bytes is not None and total > retention.max_total_bytes:
        return f"archives would exceed {retention.max_total_bytes} bytes in total"
    return None
