"""How full a mount is, how fast it grows, and what takes the space.

Growth needs history: each measurement is appended to a small JSON file in the host's state directory (per
mount), and growth is the change against the oldest sample of the last week. The history is bounded by thinning
it in time (at most one kept sample per slot of the lookback), not by dropping the oldest: runs minutes apart
(an alert firing again and again) must not push out the samples a daily trend needs.
"""

from __future__ import annotations

import fcntl
import heapq
import json
import os
import stat
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

HISTORY_SAMPLES = 100
GROWTH_LOOKBACK = timedelta(days=7)
#: Samples closer together than this say nothing about a daily trend (two log sets on one mount, a manual re-run).
GROWTH_MIN_SPAN = timedelta(hours=1)


@dataclass(frozen=True)
class MountUsage:
    mount: str
    total_bytes: int
    used_bytes: int
    available_bytes: int

    @property
    def percent_used(self) -> float:
        # As df computes Use%: the root-reserved blocks count as neither used nor available to users.
        usable = self.used_bytes + self.available_bytes
        return 100.0 * self.used_bytes / usable if usable else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "percent_used": round(self.percent_used, 2)}


def mount_point(path: str) -> str:
    """The mount point holding ``path``: walk up while the device stays the same."""
    current = os.path.realpath(path)
    device = os.stat(current).st_dev
    while current != os.sep:
        parent = os.path.dirname(current)
        if os.stat(parent).st_dev != device:
            return current
        current = parent
    return current


def measure(path: str) -> MountUsage:
    info = os.statvfs(path)
    return MountUsage(
        mount=mount_point(path),
        total_bytes=info.f_blocks * info.f_frsize,
        used_bytes=(info.f_blocks - info.f_bfree) * info.f_frsize,
        available_bytes=info.f_bavail * info.f_frsize,
    )


def largest(root: str, count: int = 10, max_entries: int = 200_000) -> dict[str, Any]:
    """The ``count`` largest files and directories (total size of everything below) under ``root``.

    Stays on ``root``'s device, never follows symlinks, and stops after ``max_entries`` entries so a huge tree
    cannot stall the run (``truncated`` says so).
    """
    device = os.stat(root).st_dev
    files: list[tuple[int, str]] = []
    dir_sizes: dict[str, int] = {}
    seen = 0
    truncated = False

    def walk(directory: str) -> int:
        nonlocal seen, truncated
        total = 0
        try:
            entries = list(os.scandir(directory))
        except OSError:
            return 0
        for entry in entries:
            seen += 1
            if seen > max_entries:
                truncated = True
                break
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(info.st_mode) and info.st_dev == device:
                total += walk(entry.path)
            elif stat.S_ISREG(info.st_mode):
                total += info.st_size
                heapq.heappush(files, (info.st_size, entry.path))
                if len(files) > count:
                    heapq.heappop(files)
        dir_sizes[directory] = total
        return total

    walk(root)
    top_dirs = heapq.nlargest(count, dir_sizes.items(), key=lambda item: item[1])
    return {
        "files": [{"path": path, "bytes": size} for size, path in sorted(files, reverse=True)],
        "directories": [{"path": path, "bytes": size} for path, size in top_dirs],
        "truncated": truncated,
    }


def record_usage(history_file: Path, usage: MountUsage, now: datetime) -> dict[str, Any]:
    """Append this measurement to the history and return the growth since the oldest sample of the last
    week."""
    history_file.parent.mkdir(parents=True, exist_ok=True)
    # Log sets on one mount are measured by parallel tasks: read-modify-write under a lock, or samples are lost.
    lock_fd = os.open(history_file.with_name(f".{history_file.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        history = read_history(history_file)
        samples = history.get(usage.mount) or []
        samples.append([now.isoformat(), usage.used_bytes])
        history[usage.mount] = samples = thin(samples, now)
        _write_history(history_file, history)
    finally:
        os.close(lock_fd)
    return growth(samples, now)


def thin(samples: list[list[Any]], now: datetime, keep: int = HISTORY_SAMPLES) -> list[list[Any]]:
    """At most ``keep`` samples: the newest, plus the oldest sample of each of ``keep - 1`` equal time slots of
    the lookback (so the oldest sample within the lookback, the one growth is measured from, always stays)."""
    dated = sorted(((datetime.fromisoformat(when), int(used)) for when, used in samples), key=lambda item: item[0])
    recent = [item for item in dated if now - item[0] <= GROWTH_LOOKBACK]
    if not recent:
        return []
    slot = GROWTH_LOOKBACK / max(1, keep - 1)
    kept: dict[int, tuple[datetime, int]] = {}
    for moment, used in recent[:-1]:
        kept.setdefault(int((now - moment) / slot), (moment, used))
    chosen = [*sorted(kept.values(), key=lambda item: item[0])[: keep - 1], recent[-1]]
    return [[moment.isoformat(), used] for moment, used in chosen]


def growth(samples: list[list[Any]], now: datetime) -> dict[str, Any]:
    """Bytes per day between the oldest sample within the lookback and the newest (None when they are less than
    an hour apart), plus what the report needs to say why: the number of samples, their span and change."""
    parsed = sorted(((datetime.fromisoformat(when), int(used)) for when, used in samples), key=lambda item: item[0])
    window = [item for item in parsed if now - item[0] <= GROWTH_LOOKBACK]
    unknown: dict[str, Any] = {"bytes_per_day": None, "since": None, "samples": len(window)}
    if len(window) < 2:
        return unknown
    (first_at, first_used), (last_at, last_used) = window[0], window[-1]
    span = last_at - first_at
    unknown.update(span_seconds=int(span.total_seconds()), change_bytes=last_used - first_used)
    if span < GROWTH_MIN_SPAN:
        return unknown
    return {
        **unknown,
        "bytes_per_day": int((last_used - first_used) / (span.total_seconds() / 86400)),
        "since": first_at.isoformat(),
    }


def read_history(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_history(path: Path, history: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(history), encoding="utf-8")
    os.replace(tmp, path)
