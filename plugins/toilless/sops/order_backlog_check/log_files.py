"""The processor's log files: the current one and its rotated siblings, read as bounded streams (no Airflow import).

Every file passes the common path check (``toilless.common.paths``) when it is read; a ``.gz``/``.zst`` is inflated
as a stream with a cap, so a decompression bomb costs bounded memory and time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from toilless.sops.order_backlog_check.log_parsing import latest_run_lines

#: Rotated files: <name>.1, <name>.2.gz, ... and archives <stem>.<timestamp>.<seq>.log[.gz|.zst].
_NUMBERED = re.compile(r"^\.(?P<n>\d+)(?P<ext>\.gz|\.zst)?\Z")
_ARCHIVE = re.compile(r"^\.(?P<ts>\d{8}(?:T?\d{4,6}Z?)?|\d{4}-\d{2}-\d{2}[T_-]?[\d:-]*)(?:\.(?P<seq>\d+))?")


class LogAccessError(ValueError):
    """A log path is not allowed or cannot be read; the message says why.

    Not :class:`InvalidInput` by itself: a log missing for a moment during a rotation is worth a retry. A configured
    or Param path outside the roots is refused as :class:`SettingsError` by :func:`resolve_settings`.
    """


#: Decompressed bytes read from one rotated file before giving up on it (a small .gz can inflate without limit).
DEFAULT_MAX_DECOMPRESSED_BYTES = 1 << 30
_CHUNK = 1 << 20


def rotated_files(current: Path) -> list[Path]:
    """The current log and its rotated siblings, newest first (candidates by name: each is checked when read).

    Recognised: ``name.1`` (``.gz``/``.zst``) numbered copies (lower is newer) and archives named
    ``<stem>.<timestamp>[.<seq>].log[.gz|.zst]`` or ``<name>.<timestamp>[.<seq>][.gz|.zst]`` (later is newer).
    """
    directory = current.parent
    numbered: list[tuple[int, Path]] = []
    archives: list[tuple[str, int, Path]] = []
    if directory.is_dir():
        for candidate in directory.iterdir():
            # No is_file() here: a symlink or FIFO sibling is reported as skipped by the reader, not hidden.
            if candidate == current:
                continue
            for prefix in (current.name, current.stem):
                if not candidate.name.startswith(prefix + "."):
                    continue
                rest = candidate.name[len(prefix) :]
                if prefix == current.name and (match := _NUMBERED.match(rest)):
                    numbered.append((int(match.group("n")), candidate))
                    break
                if match := _ARCHIVE.match(rest):
                    stamp = re.sub(r"\D", "", match.group("ts"))
                    archives.append((stamp, int(match.group("seq") or 0), candidate))
                    break
    ordered = [current] if current.exists() or current.is_symlink() else []
    # Numbered copies are the most recent rotations; timestamped archives are older than those.
    ordered += [path for _, path in sorted(numbered)]
    ordered += [path for _, _, path in sorted(archives, reverse=True)]
    return ordered


@dataclass(frozen=True)
class TailText:
    """The last bytes of a log file's text, and what was cut to stay within the bounds."""

    text: str
    cut_bytes: int = 0  # decompressed bytes before the kept tail
    gave_up: bool = False  # the file inflated beyond the scan limit: no text kept


def read_text(
    path: Path,
    max_bytes: int,
    *,
    allowed_roots: Sequence[str],
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
) -> TailText:
    """The last ``max_bytes`` of a log file's text, read as a bounded stream, after the common path check.

    Plain files: a seek to the tail. ``.gz``/``.zst``: a streaming decompressor of which only the last
    ``max_bytes`` are kept (the newest lines of a rotated file are at its end); memory stays about ``max_bytes`` plus
    one chunk, whatever the file inflates to. A file that inflates beyond ``max_decompressed_bytes`` is given up on
    (``gave_up``), so a decompression bomb costs bounded time too. When the kept text starts mid-file, its first
    partial line is dropped.
    """
    from collections import deque

    from toilless.common.paths import open_checked

    if max_bytes <= 0:
        return TailText("", cut_bytes=0)
    with open_checked(path, allowed_roots) as raw:
        if path.suffix in (".gz", ".zst"):
            if path.suffix == ".gz":
                import gzip

                stream: Any = gzip.GzipFile(fileobj=raw, mode="rb")
            else:
                import zstandard

                stream = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
            with stream:
                chunks: deque[bytes] = deque()
                kept = scanned = 0
                while chunk := stream.read(_CHUNK):
                    scanned += len(chunk)
                    if scanned > max_decompressed_bytes:
                        return TailText("", cut_bytes=scanned, gave_up=True)
                    chunks.append(chunk)
                    kept += len(chunk)
                    while kept - len(chunks[0]) >= max_bytes:
                        kept -= len(chunks.popleft())
                data = b"".join(chunks)
                cut = scanned - len(data)
        else:
            size = os.fstat(raw.fileno()).st_size
            cut = max(size - max_bytes, 0)
            raw.seek(cut)
            data = raw.read(max_bytes)
    if len(data) > max_bytes:
        cut += len(data) - max_bytes
        data = data[-max_bytes:]
    if cut:
        newline = data.find(b"\n")
        cut += newline + 1 if newline >= 0 else len(data)
        data = data[newline + 1 :] if newline >= 0 else b""
    return TailText(data.decode("utf-8", errors="replace"), cut_bytes=cut)


class LogRead(NamedTuple):
    """The latest run's lines from a log and its rotated siblings."""

    lines: list[str]
    found_startup: bool
    sources: list[str]  # files read, newest first
    notes: list[str]  # files skipped and text cut, with why


def _mib(size: int) -> str:
    return f"{size / (1 << 20):,.0f} MiB" if size >= 1 << 20 else f"{size:,} bytes"


def read_latest_run(
    current: Path,
    *,
    allowed_roots: Sequence[str],
    max_files: int = 5,
    max_bytes: int = 64 << 20,
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
) -> LogRead:
    """Lines of the latest run from the current log and, when it started before a rotation, the rotated ones.

    Reading stops at the first file holding a ``Startup...``. Every file passes the same path check as the
    configured log (a regular file physically under ``allowed_roots``); one that does not is skipped and named in
    ``notes``. At most ``max_bytes`` of text are read in all.
    """
    from toilless.common.paths import unreadable_reason

    files = rotated_files(current)
    if not files:
        raise LogAccessError(f"processor log {current} does not exist")
    collected: list[str] = []
    read: list[str] = []
    notes: list[str] = []
    budget = max_bytes
    for path in files[:max_files]:
        reason = unreadable_reason(path, allowed_roots)
        if reason:
            if path == current:
                raise LogAccessError(f"processor log {current} {reason}")
            notes.append(f"skipped {path.name}: it {reason}")
            continue
        tail = read_text(path, budget, allowed_roots=allowed_roots, max_decompressed_bytes=max_decompressed_bytes)
        if tail.gave_up:
            notes.append(
                f"skipped {path.name}: it inflates to more than {_mib(max_decompressed_bytes)} "
                "(log.max_decompressed_bytes)"
            )
            continue
        if tail.cut_bytes:
            notes.append(f"read only the last {_mib(len(tail.text))} of {path.name} ({_mib(tail.cut_bytes)} cut)")
        budget -= len(tail.text.encode("utf-8", "replace")) if tail.text else 0
        read.append(str(path))
        file_lines = tail.text.splitlines()
        lines, found = latest_run_lines([file_lines])
        if found:
            return LogRead(lines + collected, True, read, notes)
        collected = file_lines + collected
        if budget <= 0:
            notes.append(f"stopped after {_mib(max_bytes)} of log text (log.max_bytes) without finding `Startup...`")
            break
    if len(files) > max_files:
        notes.append(f"{len(files) - max_files} older rotated file(s) not read (log.max_files = {max_files})")
    return LogRead(collected, False, read, notes)


def resolve_log_path(raw: str, allowed_roots: Sequence[str]) -> Path:
    """Check a log path from a Param or config: absolute, no control characters, inside an allowed root.

    Symlinks and ``..`` are resolved first, so a path cannot escape its root. The file itself need not exist yet
    (the read says so); whatever is read later passes the same check again (``toilless.common.paths``).
    """
    from toilless.common.paths import real_root

    if not isinstance(raw, str) or not raw.strip():
        raise LogAccessError("log path is empty")
    if any(ord(char) < 32 for char in raw):
        raise LogAccessError("log path contains control characters")
    path = Path(raw)
    if not path.is_absolute():
        raise LogAccessError(f"log path {raw!r} is not absolute")
    if real_root(path, allowed_roots) is not None:
        return path.resolve()
    roots = ", ".join(allowed_roots) or "none configured"
    raise LogAccessError(f"log path {raw!r} is outside the allowed log directories ({roots})")
