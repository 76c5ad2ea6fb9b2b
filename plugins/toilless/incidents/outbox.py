"""The recorder's outbox: events whose database write failed, kept in local JSON-lines files until a retry writes
them. The database may be away; the local disk is where the runbook already runs.

One file per process (``outbox-<pid>.jsonl``), appended under ``flock``. A drain claims a file by renaming it, then
locks it, so an append that raced the rename either lands before the drain reads (same inode, lock held) or sees
that its path no longer names the file it opened and appends to a fresh one: no event is written into a file that
is being deleted. Events carry their id, so a drain that dies after the database write but before deleting the
file writes nothing twice next time.

The directory: ``TOILLESS_INCIDENT_OUTBOX_DIR``, else ``$AIRFLOW_HOME/toilless_incident_outbox``. It is per host:
on a distributed deployment each worker's next successful write (and the escalation sweeper on its worker) drains
its own files; the handoff's self-check reports what is still waiting.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from toilless.incidents.events import Event

log = logging.getLogger(__name__)

DIR_ENV = "TOILLESS_INCIDENT_OUTBOX_DIR"
#: Events written per database transaction while draining.
DRAIN_CHUNK = 500


def outbox_dir() -> Path:
    configured = os.environ.get(DIR_ENV)
    if configured:
        return Path(configured)
    home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")
    return home / "toilless_incident_outbox"


def append(events: Sequence[Event], directory: Path | None = None) -> None:
    """Append events to this process's outbox file, durably (fsync). Raises OSError if the disk refuses."""
    directory = directory or outbox_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"outbox-{os.getpid()}.jsonl"
    lines = "".join(json.dumps(item.as_dict(), default=str, sort_keys=True) + "\n" for item in events).encode()
    while True:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                continue  # a drain claimed the file between open and lock: write to a fresh one
            os.write(fd, lines)
            os.fsync(fd)
            return
        finally:
            os.close(fd)


def pending(directory: Path | None = None) -> int:
    """Events waiting in the outbox (lines in its files)."""
    directory = directory or outbox_dir()
    if not directory.is_dir():
        return 0
    total = 0
    for path in directory.glob("*.jsonl*"):
        try:
            with path.open("rb") as handle:
                total += sum(1 for line in handle if line.strip())
        except OSError:
            continue
    return total


def abandoned_claims(directory: Path) -> list[Path]:
    """Files claimed by a drain whose process is gone (it died between claiming and deleting): drained again."""
    found = []
    for path in sorted(directory.glob("*.jsonl.draining-*")):
        pid_text = path.name.split(".draining-", 1)[1].split("-", 1)[0]
        if not pid_text.isdigit() or not _alive(int(pid_text)):
            found.append(path)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def drain(write: Callable[[list[Event]], int], directory: Path | None = None) -> dict[str, int]:
    """Write every waiting event with ``write`` (idempotent by event id); returns written/duplicate/left/bad counts.

    A file whose write fails stays in the outbox (renamed back) for the next drain.
    """
    directory = directory or outbox_dir()
    counts = {"written": 0, "duplicates": 0, "left": 0, "unreadable": 0}
    if not directory.is_dir():
        return counts
    for path in sorted(directory.glob("*.jsonl")) + abandoned_claims(directory):
        claimed = path.with_name(f"{path.name.split('.draining-')[0]}.draining-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            path.rename(claimed)
        except FileNotFoundError:
            continue  # another drain took it
        fd = os.open(claimed, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # waits for an append that opened the file before the rename
            batch: list[Event] = []
            with os.fdopen(os.dup(fd), "rb") as handle:
                for line in handle:
                    if not line.strip():
                        continue
                    try:
                        batch.append(Event.from_dict(json.loads(line)))
                    except (ValueError, KeyError, TypeError):
                        counts["unreadable"] += 1
                        log.error("Incident outbox %s: unreadable line dropped: %.200r", claimed, line)
            try:
                for start in range(0, len(batch), DRAIN_CHUNK):
                    chunk = batch[start : start + DRAIN_CHUNK]
                    written = write(chunk)
                    counts["written"] += written
                    counts["duplicates"] += len(chunk) - written
            except Exception as err:
                counts["left"] += len(batch)
                back = directory / f"outbox-retry-{uuid.uuid4().hex}.jsonl"
                claimed.rename(back)
                log.warning("Incident outbox: %s event(s) still waiting (%s); kept in %s", len(batch), err, back)
                continue
            claimed.unlink()
        finally:
            os.close(fd)
    return counts
