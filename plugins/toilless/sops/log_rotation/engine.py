"""One log set end to end: recover leftovers, rotate, compress, apply retention, measure the mount.

Over 400 lines because the crash-recovery table below is one state machine, and its steps read best side by side.

Every step re-reads the directory before acting and is safe to repeat, so a retry or the next run finishes
whatever a crash interrupted:

=======================================  =====================================================================
left on disk by a crash                  what the next run does
=======================================  =====================================================================
``.<archive>.toilless-tmp``              deletes it (never complete by construction) and compresses again
pending ``app.log.<stamp>.<n>``          compresses it (once no writer holds it), then removes it
pending *and* its archive                checks the archive decompresses to the pending file, removes that
live renamed, new live not yet created   nothing special: the writer (re)creates it, the pending is compressed
=======================================  =====================================================================

Results are small JSON-able dicts (they go to XCom and into the report).
"""

from __future__ import annotations

import fcntl
import fnmatch
import glob
import grp
import logging
import os
import pwd
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from toilless.sops.log_rotation import compress, gating, naming, paths, probe_memory, retention, rotate, usage
from toilless.sops.log_rotation.settings import LogSet

log = logging.getLogger(__name__)

LOCK_TIMEOUT_SECONDS = 120.0


class LockTimeoutError(RuntimeError):
    """Another rotation of the same log set is running on this host."""


@dataclass
class Owned:
    """What a log set's directories hold: live files and the rotated files, archives and temporaries we
    made."""

    live: list[str] = field(default_factory=list)
    skipped: list[paths.Skipped] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    archives: list[str] = field(default_factory=list)
    tmp: list[str] = field(default_factory=list)


def discover(log_set: LogSet, extra_globs: tuple[str, ...] = ()) -> Owned:
    """Everything the log set owns on disk now. Raises :class:`paths.PathEscapeError` for a glob outside the
    root."""
    patterns = (*log_set.globs, *extra_globs)
    owned = Owned()
    escape = paths.root_escape_reason(log_set.root, log_set.allowed_roots)
    if escape:
        raise paths.PathEscapeError(escape)
    owned.live, owned.skipped = paths.find_live_files(log_set.root, patterns, log_set.allowed_roots)
    seen: set[str] = set()
    for pattern in patterns:
        absolute = paths.check_glob(pattern, log_set.root)
        dir_pattern, base_pattern = os.path.split(absolute)
        directories = glob.glob(dir_pattern) if glob.has_magic(dir_pattern) else [dir_pattern]
        for directory in directories:
            if not os.path.isdir(directory) or os.path.islink(directory):
                continue
            if not paths.physically_under(os.path.join(directory, "x"), log_set.root, log_set.allowed_roots):
                continue
            for entry in os.scandir(directory):
                if entry.path in seen or not entry.is_file(follow_symlinks=False):
                    continue
                name = entry.name
                final = naming.final_of_tmp(name)
                parsed = naming.parse_rotated(final if final else name)
                if parsed is None or not fnmatch.fnmatchcase(parsed.live, base_pattern):
                    continue
                seen.add(entry.path)
                if final:
                    owned.tmp.append(entry.path)
                elif parsed.is_archive:
                    owned.archives.append(entry.path)
                else:
                    owned.pending.append(entry.path)
    for items in (owned.pending, owned.archives, owned.tmp):
        items.sort()
    return owned


@contextmanager
def log_set_lock(state_dir: Path, name: str, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
    """One rotation per log set per host at a time (a manual run beside a scheduled one, a zombie task's
    retry)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeoutError(f"log set {name} is being rotated by another process") from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)


def _size(path: str) -> int:
    try:
        return os.lstat(path).st_size
    except FileNotFoundError:
        return 0


def footprint(owned: Owned) -> int:
    """Bytes the log set occupies: live files, pending rotated files, archives and temporaries."""
    return sum(_size(path) for path in (*owned.live, *owned.pending, *owned.archives, *owned.tmp))


def rotate_log_set(
    log_set: LogSet,
    *,
    state_dir: Path,
    dry_run: bool = False,
    now: datetime | None = None,
    extra_globs: tuple[str, ...] = (),
    gate: gating.GateRequest | None = None,
) -> dict[str, Any]:
    """Recover leftovers, rotate due live files and compress every pending rotated file. Returns what was
    done.

    With ``gate``, the action gate decides under the log set's lock, right before the first change; a refusal
    changes nothing and reports what would have been done, with the gate's reason (``held``)."""
    given_now = now
    now = now or datetime.now(UTC)
    escape = paths.root_escape_reason(log_set.root, log_set.allowed_roots)
    if escape:
        # This log set's root points outside the allowed roots now (a symlink): refuse it, as an error, and let
        # the other log sets run.
        return _refused(log_set, dry_run, escape)
    owned = discover(log_set, extra_globs)
    due = [path for path in owned.live if _size(path) >= log_set.min_size_bytes]
    result = _result(log_set, dry_run)
    result["bytes_before"] = footprint(owned)
    result["skipped"] = [{"path": item.path, "reason": item.reason} for item in owned.skipped]
    result["not_due"] = [
        {
            "path": path,
            "bytes": _size(path),
            "reason": f"smaller than min_size ({log_set.min_size_bytes} bytes)",
        }
        for path in owned.live
        if path not in due
    ]
    if dry_run:
        return _plan_only(log_set, owned, due, now, result)
    with log_set_lock(state_dir, log_set.name):
        owned = discover(log_set, extra_globs)  # re-read under the lock: another run may have acted meanwhile
        due = [path for path in owned.live if _size(path) >= log_set.min_size_bytes]
        if gate is not None and (due or owned.pending or owned.tmp):  # nothing to change: nothing to ask
            # The moment of acting (the lock may have been waited for), unless the caller fixed the clock.
            verdict = gating.decide(state_dir, log_set.name, gating.ROTATE, gate, now=given_now or datetime.now(UTC))
            result["gate"] = verdict.as_dict()
            if not verdict.allowed:
                return _held(_plan_only(log_set, owned, due, now, result), verdict.reason)
        for tmp in owned.tmp:
            # A temporary is complete only once renamed; any still here was cut off. Its source is intact.
            if compress.remove_if_exists(tmp):
                result["removed_tmp"].append(tmp)
        pending = list(owned.pending)
        for live in owned.live:
            if _size(live) < log_set.min_size_bytes:
                continue
            rotated = _rotate_one(log_set, live, now, result)
            if rotated:
                pending.append(rotated)
        _compress_pending(log_set, pending, result, probe_memory.memory_file(state_dir, log_set.name), now)
        result["bytes_after"] = footprint(discover(log_set, extra_globs))
    return result


def _result(log_set: LogSet, dry_run: bool) -> dict[str, Any]:
    """The report of one log set before anything was measured or done: every key a caller may read."""
    return {
        "log_set": log_set.name,
        "dry_run": dry_run,
        "mode": log_set.mode,
        "bytes_before": None,
        "bytes_after": None,
        "skipped": [],
        "not_due": [],
        "removed_tmp": [],
        "recovered": [],
        "rotated": [],
        "compressed": [],
        "pending": [],
        "reopen": None,
        "errors": [],
    }


def _held(result: dict[str, Any], reason: str) -> dict[str, Any]:
    """A result the gate refused: nothing changed, reported as a dry run with the gate's reason."""
    return {**result, "dry_run": True, "held": reason}


def _refused(log_set: LogSet, dry_run: bool, reason: str) -> dict[str, Any]:
    result = _result(log_set, dry_run)
    result["errors"].append(reason)
    return result


def _plan_only(log_set: LogSet, owned: Owned, due: list[str], now: datetime, result: dict[str, Any]) -> dict[str, Any]:
    """Dry run: the same decisions, nothing changed."""
    taken_by_dir: dict[str, set[str]] = {}
    result["removed_tmp"] = list(owned.tmp)
    for live in due:
        directory, name = os.path.split(live)
        taken = taken_by_dir.setdefault(directory, set(os.listdir(directory)))
        rotated = naming.new_rotated_name(name, now, taken)
        taken.add(rotated.pending_name)
        pending = os.path.join(directory, rotated.pending_name)
        result["rotated"].append({"live": live, "rotated": pending, "bytes": _size(live), "mode": log_set.mode})
        result["compressed"].append(
            {
                "source": pending,
                "archive": os.path.join(directory, rotated.archive_name(log_set.compression)),
                "source_bytes": _size(live),
                "archive_bytes": None,
            }
        )
    for pending in owned.pending:
        parsed = naming.parse_rotated(os.path.basename(pending))
        assert parsed is not None
        archive = os.path.join(os.path.dirname(pending), parsed.archive_name(log_set.compression))
        result["compressed"].append(
            {"source": pending, "archive": archive, "source_bytes": _size(pending), "archive_bytes": None}
        )
    result["bytes_after"] = result["bytes_before"]
    return result


def _rotate_one(log_set: LogSet, live: str, now: datetime, result: dict[str, Any]) -> str | None:
    # Re-checked right before acting.
    reason = paths.unsafe_reason(live, log_set.root, log_set.allowed_roots)
    if reason:
        result["skipped"].append({"path": live, "reason": reason})
        return None
    try:
        problem = rotate.ownership_problem(os.lstat(live))
    except OSError as err:
        result["errors"].append(f"rotating {live}: {err}")
        return None
    if problem:
        # Not a skip: this file is due and will fill the mount until someone fixes how the rotation runs.
        result["errors"].append(f"refused to rotate {live}: {problem}")
        return None
    directory, name = os.path.split(live)
    rotated_name = naming.new_rotated_name(name, now, set(os.listdir(directory)))
    rotated = os.path.join(directory, rotated_name.pending_name)
    size = _size(live)
    entry: dict[str, Any] = {"live": live, "rotated": rotated, "bytes": size, "mode": log_set.mode}
    try:
        if log_set.mode == "copytruncate":
            outcome = rotate.rotate_copytruncate(live, rotated)
            entry.update(
                bytes=outcome.bytes_copied,
                grew_during_copy_bytes=outcome.grew_during_copy_bytes,
                window_microseconds=round(outcome.window_microseconds, 1),
                hole_bytes=outcome.hole_bytes,
            )
        else:
            rotate.rotate_rename(live, rotated)
    except rotate.RefusedError as err:
        result["errors"].append(f"refused to rotate {live}: {err}")
        return None
    except Exception as err:  # one file's failure never stops the others
        result["errors"].append(f"rotating {live}: {type(err).__name__}: {err}")
        log.exception("Rotating %s failed", live)
        return None
    log.info("Rotated %s -> %s (%s, %d bytes)", live, rotated, log_set.mode, entry["bytes"])
    result["rotated"].append(entry)
    return rotated


def _compress_pending(
    log_set: LogSet, pending: list[str], result: dict[str, Any], memory_path: Path, now: datetime
) -> None:
    renamed_now = any(item["mode"] == "rename" for item in result["rotated"])
    # After a rename the writer is told to reopen anyway; otherwise only if it still holds a leftover.
    held = {} if renamed_now else rotate.held_open(pending)
    if renamed_now or held:
        try:
            result["reopen"] = rotate.reopen_writer(log_set.reopen)
        except rotate.ReopenError as err:
            result["errors"].append(str(err))
    deadline = time.monotonic() + log_set.reopen.timeout_seconds
    try:
        uid, gid = _archive_owner(log_set)
    except KeyError as err:
        result["errors"].append(f"archive_owner/archive_group of log set {log_set.name}: no such user or group {err}")
        result["pending"].extend({"path": path, "reason": "not compressed: see errors"} for path in pending)
        return
    # Wait for the writer to let go of every rotated file at once, not file by file.
    still_held = (
        rotate.wait_until_released(pending, max(0.0, deadline - time.monotonic())) if held or renamed_now else {}
    )
    adaptive = log_set.compression == "zstd" and log_set.adaptive_compression
    memory = probe_memory.load(memory_path) if adaptive and pending else {}
    remembered = dict(memory)
    for source in pending:
        if source in still_held:
            result["pending"].append(
                {"path": source, "reason": f"still held open by pid {still_held[source]}; compressed next run"}
            )
            continue
        try:
            _compress_one(log_set, source, uid, gid, result, memory if adaptive else None, now)
        except Exception as err:  # one file's failure never stops the others
            result["errors"].append(f"compressing {source}: {type(err).__name__}: {err}")
            result["pending"].append({"path": source, "reason": f"not compressed: {err}"})
            log.exception("Compressing %s failed", source)
    if memory != remembered:
        probe_memory.save(memory_path, memory)


def _compress_one(
    log_set: LogSet,
    source: str,
    uid: int | None,
    gid: int | None,
    result: dict[str, Any],
    memory: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> None:
    parsed = naming.parse_rotated(os.path.basename(source))
    if parsed is None:
        raise ValueError("not a name this engine gives rotated files")
    # The adaptive probe's answer for this log, remembered from an earlier rotation (probe_memory).
    live = os.path.join(os.path.dirname(source), parsed.live)
    key = compress.probe_key(log_set.compression_level, log_set.zstd_parameters)
    now = now or datetime.now(UTC)
    recalled = probe_memory.recall(memory, live, key, now) if memory is not None else None
    archive = os.path.join(os.path.dirname(source), parsed.archive_name(log_set.compression))
    # Adaptive compression may have written either format; the configured one is looked at first.
    candidates = [archive] + [
        os.path.join(os.path.dirname(source), parsed.archive_name(kind))
        for kind in naming.EXTENSIONS
        if kind != log_set.compression
    ]
    for existing in candidates:
        try:
            if os.path.exists(existing) and compress.archive_digest(existing) == compress.file_digest(source):
                # A crash hit between publishing the archive and removing its source: finish the job.
                _remove_source(source)
                result["recovered"].append({"source": source, "archive": existing})
                return
        except Exception as err:  # a corrupt archive under our name: compress again over it
            log.warning("Existing archive %s does not verify (%s); compressing again", existing, err)
    try:
        done = compress.compress_verified(
            source,
            archive,
            compression=log_set.compression,
            level=log_set.compression_level,
            threads=log_set.compression_threads,
            zstd_parameters=log_set.zstd_parameters,
            adaptive=log_set.adaptive_compression,
            archive_mode=log_set.archive_mode,
            archive_uid=uid,
            archive_gid=gid,
            choice=recalled,
        )
    except compress.SourceChangedError as err:
        # A writer still appends to it: expected after a slow reopen; the next run compresses it.
        result["pending"].append({"path": source, "reason": str(err)})
        log.warning("Not compressed: %s", err)
        return
    except (compress.VerificationError, OSError) as err:
        # ENOSPC, EIO, a bad archive: the step did not finish, and someone must know (the source is kept).
        result["pending"].append({"path": source, "reason": f"not compressed: {err}"})
        result["errors"].append(f"compressing {source} into {archive}: {err}")
        log.warning("Not compressed: %s", err)
        return
    for stale in candidates:
        # An archive under our name in the other format did not verify above: the new one replaces it, as a
        # rename over it would have in the same format.
        if stale != done.archive and compress.remove_if_exists(stale):
            log.warning("Removed %s, which did not verify; %s replaces it", stale, done.archive)
    _remove_source(source)
    if memory is not None and done.choice is not None and done.source_bytes:
        ratio = done.archive_bytes / done.source_bytes
        if done.probed:
            probe_memory.remember(memory, live, key, done.choice, ratio, now)
        elif probe_memory.check_drift(memory, live, ratio):
            log.info("%s compressed to %.3f of its size, unlike the probed file: the next rotation probes", live, ratio)
    archive = done.archive
    log.info("Compressed %s -> %s (%d -> %d bytes)", source, archive, done.source_bytes, done.archive_bytes)
    result["compressed"].append(
        {
            "source": source,
            "archive": archive,
            "source_bytes": done.source_bytes,
            "archive_bytes": done.archive_bytes,
            "crc32": f"{done.crc32:08x}",
            "settings": done.settings,
        }
    )


def _remove_source(source: str) -> None:
    # Not followed by an fsync of the directory: the archive's name is already durable, and if a crash undoes this
    # unlink, the next run finds the source beside its archive, checks one against the other and removes it.
    os.unlink(source)


def _archive_owner(log_set: LogSet) -> tuple[int | None, int | None]:
    uid = pwd.getpwnam(log_set.archive_owner).pw_uid if log_set.archive_owner else None
    gid = grp.getgrnam(log_set.archive_group).gr_gid if log_set.archive_group else None
    return uid, gid


def apply_retention(
    log_set: LogSet,
    *,
    state_dir: Path,
    dry_run: bool = False,
    now: datetime | None = None,
    extra_globs: tuple[str, ...] = (),
    planned_archives: list[dict[str, Any]] | None = None,
    gate: gating.GateRequest | None = None,
) -> dict[str, Any]:
    """Delete this log set's archives beyond retention; in a dry run, list them (counting the planned
    archives). With ``gate``, the action gate decides under the lock first; a refusal lists and deletes nothing."""
    given_now = now
    now = now or datetime.now(UTC)
    escape = paths.root_escape_reason(log_set.root, log_set.allowed_roots)
    if escape:
        return {
            "log_set": log_set.name,
            "dry_run": dry_run,
            "deleted": [],
            "retention": log_set.retention.describe(),
            "errors": [escape],
        }
    owned = discover(log_set, extra_globs)
    listing = [_archive_info(path) for path in owned.archives]
    for planned in planned_archives or []:
        # A dry run's future archives: exact for count and age; their size is unknown, so the source size is
        # used.
        info = _archive_info(planned["archive"], size=int(planned.get("source_bytes") or 0))
        if info.path not in {item.path for item in listing}:
            listing.append(info)
    expired = retention.select_expired(listing, log_set.retention, now)
    planned_paths = {planned["archive"] for planned in planned_archives or []}
    deleted: list[dict[str, Any]] = []
    if dry_run:
        deleted = [item for item in _listed(expired) if item["path"] not in planned_paths]
        return {
            "log_set": log_set.name,
            "dry_run": True,
            "deleted": deleted,
            "retention": log_set.retention.describe(),
        }
    verdict = None
    with log_set_lock(state_dir, log_set.name):
        if gate is not None and expired:
            verdict = gating.decide(state_dir, log_set.name, gating.RETAIN, gate, now=given_now or datetime.now(UTC))
            if not verdict.allowed:
                return {
                    "log_set": log_set.name,
                    "dry_run": True,
                    "deleted": _listed(expired),
                    "retention": log_set.retention.describe(),
                    "gate": verdict.as_dict(),
                    "held": verdict.reason,
                }
        for item in expired:
            path = item.archive.path
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                continue  # already gone (a retry after a partial run)
            if not stat.S_ISREG(info.st_mode) or paths.unsafe_reason(path, log_set.root):
                continue
            os.unlink(path)
            deleted.append({"path": path, "bytes": info.st_size, "reason": item.reason})
            log.info("Deleted %s (%d bytes): %s", path, info.st_size, item.reason)
        if deleted:
            for directory in {os.path.dirname(item["path"]) for item in deleted}:
                compress.fsync_dir(directory)
    return {
        "log_set": log_set.name,
        "dry_run": False,
        "deleted": deleted,
        "retention": log_set.retention.describe(),
        **({"gate": verdict.as_dict()} if verdict is not None else {}),
    }


def _listed(expired: list[Any]) -> list[dict[str, Any]]:
    """What retention would delete, as the report lists it (nothing deleted)."""
    return [{"path": item.archive.path, "bytes": item.archive.size, "reason": item.reason} for item in expired]


def _archive_info(path: str, size: int | None = None) -> retention.Archive:
    parsed = naming.parse_rotated(os.path.basename(path))
    assert parsed is not None
    return retention.Archive(
        path=path,
        live=os.path.join(os.path.dirname(path), parsed.live),
        rotated_at=parsed.rotated_at,
        seq=parsed.seq,
        size=_size(path) if size is None else size,
    )


def measure_mount_usage(
    log_set: LogSet, *, state_dir: Path, dry_run: bool = False, now: datetime | None = None
) -> dict[str, Any]:
    """The log set's mount: usage, growth per day, status against thresholds, largest files and
    directories."""
    now = now or datetime.now(UTC)
    measured = usage.measure(log_set.root)
    history_file = state_dir / "usage_history.json"
    if dry_run:
        # Measure, but leave the history alone: a dry run writes nothing.
        samples = usage.read_history(history_file).get(measured.mount, [])
        grown = usage.growth([*samples, [now.isoformat(), measured.used_bytes]], now)
    else:
        grown = usage.record_usage(history_file, measured, now)
    percent = measured.percent_used
    status = (
        "critical" if percent >= log_set.critical_percent else "warning" if percent >= log_set.warning_percent else "ok"
    )
    result = {
        "log_set": log_set.name,
        "host": os.uname().nodename,
        "usage": measured.as_dict(),
        "growth": grown,
        "status": status,
        "warning_percent": log_set.warning_percent,
        "critical_percent": log_set.critical_percent,
        "channel": log_set.channel,
    }
    if status != "ok" and not paths.root_escape_reason(log_set.root, log_set.allowed_roots):
        # Never list what lies outside the allowed roots (a root turned into a symlink is refused elsewhere).
        result["largest"] = usage.largest(log_set.root, log_set.largest)
    return result
