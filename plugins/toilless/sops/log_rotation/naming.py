"""The names this engine gives files, and how it recognises its own.

For a live file ``app.log`` rotated at 2026-11-22 03:30:00 UTC:

* ``app.log.20261122T033000Z.1``: rotated, not yet compressed ("pending"); never deleted by retention.
* ``app.log.20261122T033000Z.1.zst`` (or ``.gz``): a complete, verified archive. Only these are subject to
  retention.
* ``.app.log.20261122T033000Z.1.zst.toilless-tmp``: an archive being written. Hidden, with a suffix no archive
  pattern matches, so a partial file never looks complete; any left over from a crash is deleted and redone.

The sequence number makes names unique when a file is rotated twice in the same second.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

TMP_SUFFIX = ".toilless-tmp"
EXTENSIONS = {"zstd": ".zst", "gzip": ".gz"}
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
# DOTALL and fullmatch: a file name may hold any byte but "/" and NUL, newlines included ("$" would also match
# before a trailing newline).
_ROTATED = re.compile(r"(?P<live>.+)\.(?P<stamp>\d{8}T\d{6}Z)\.(?P<seq>\d{1,6})(?P<ext>\.zst|\.gz)?", re.DOTALL)
_TMP = re.compile(r"\.(?P<final>.+)" + re.escape(TMP_SUFFIX), re.DOTALL)

#: Names other tools give rotated or archived logs. A live log is never one of these, whatever a glob matches:
#: emptying one would move compliance data into our archives, where retention deletes it.
_COMPRESSED = re.compile(r"\.(gz|bz2|xz|zst|zstd|lz4|lzma|lz|lzo|z|zip|br|sz|tgz|tbz2|txz|7z)\Z", re.IGNORECASE)
_LOG_EXTENSION = re.compile(r"\.(log|txt|out|err|json)\Z", re.IGNORECASE)
_FOREIGN_ROTATED = (
    # logrotate's numbered and Python's RotatingFileHandler: app.log.1, app.log.12
    (re.compile(r"\.\d{1,6}\Z"), "numbered"),
    # dated: logrotate dateext (-YYYYMMDD, -YYYYMMDDHH, custom dateformat with -%s or separators), Python's
    # TimedRotatingFileHandler (.2026-01-01, .2026-01-01_10-00, .2026-01-01_10-00-00), cronolog-style stamps
    (
        re.compile(
            r"[._-]\d{4}[-_.]?\d{2}[-_.]?\d{2}(?:[-_.T]?\d{2}(?:[-_.:]?\d{2}){0,2})?(?:[-_.]\d{1,12})?Z?\Z",
            re.IGNORECASE,
        ),
        "dated",
    ),
    # epoch seconds (logrotate dateformat -%s)
    (re.compile(r"[._-]\d{9,11}\Z"), "dated (epoch)"),
    # journald: system@<seqnum>-<head>-<time>.journal and the ~ of a dirty one; live .journal files are journald's
    (re.compile(r"@[^/]*\.journal~?\Z|\.journal~?\Z"), "a journald journal"),
    (re.compile(r"\.(old|bak|orig|prev|save|backup|rotated|archived?)\Z|~\Z", re.IGNORECASE), "a backup (.old, ~)"),
)


@dataclass(frozen=True, order=True)
class RotatedName:
    """A parsed name of a rotated file (pending or archive)."""

    stamp: str
    seq: int
    live: str
    ext: str  # "" for pending, ".zst" / ".gz" for archives

    @property
    def is_archive(self) -> bool:
        return bool(self.ext)

    @property
    def rotated_at(self) -> datetime:
        # Sliced, not datetime.strptime: its first call costs ~10 ms of CPU (it imports _strptime, calendar and
        # locale and compiles their patterns), a tenth of a CLI run's start. _ROTATED checked the digits; an
        # impossible date (month 13) raises ValueError as strptime would.
        text = self.stamp  # YYYYmmddTHHMMSSZ (STAMP_FORMAT)
        return datetime(
            int(text[0:4]),
            int(text[4:6]),
            int(text[6:8]),
            int(text[9:11]),
            int(text[11:13]),
            int(text[13:15]),
            tzinfo=UTC,
        )

    @property
    def pending_name(self) -> str:
        return f"{self.live}.{self.stamp}.{self.seq}"

    def archive_name(self, compression: str) -> str:
        return f"{self.pending_name}{EXTENSIONS[compression]}"


def parse_rotated(filename: str) -> RotatedName | None:
    """The parsed name if ``filename`` is one of ours (pending or archive), else None."""
    match = _ROTATED.fullmatch(filename)
    if not match:
        return None
    return RotatedName(
        stamp=match.group("stamp"),
        seq=int(match.group("seq")),
        live=match.group("live"),
        ext=match.group("ext") or "",
    )


def is_ours(filename: str) -> bool:
    """True for any name this engine creates: pending, archive or temporary."""
    return parse_rotated(filename) is not None or is_tmp(filename)


def is_tmp(filename: str) -> bool:
    return _TMP.fullmatch(filename) is not None


def foreign_archive_reason(filename: str) -> str | None:
    """Why ``filename`` looks like a file another tool rotated or archived (so it is never a live log), or None.

    Covers logrotate (``.1``, ``.1.gz``, ``-YYYYMMDD``, ``-YYYYMMDD.gz``, custom ``dateformat``), Python's
    RotatingFileHandler / TimedRotatingFileHandler (``.1``, ``.2026-01-01``, ``.2026-01-01_10-00``), journald
    (``@...journal~``) and backups (``.old``, ``~``).
    """
    if _COMPRESSED.search(filename):
        return "is compressed (another tool's archive)"
    # logrotate's "extension .log" keeps the extension last: app.1.log, app-20260101.log.
    stems = {filename, _LOG_EXTENSION.sub("", filename)}
    for pattern, kind in _FOREIGN_ROTATED:
        if any(pattern.search(stem) for stem in stems):
            return f"looks like a rotated or archived file ({kind})"
    return None


def with_extension(archive: str, compression: str) -> str:
    """``archive`` (a path ending in one of :data:`EXTENSIONS`) named for ``compression`` instead."""
    for extension in EXTENSIONS.values():
        if archive.endswith(extension):
            return archive[: -len(extension)] + EXTENSIONS[compression]
    raise ValueError(f"{archive!r} does not end in an archive extension")


def tmp_name(final_name: str) -> str:
    return f".{final_name}{TMP_SUFFIX}"


def final_of_tmp(filename: str) -> str | None:
    """For a temporary file, the name it would have been published as."""
    match = _TMP.fullmatch(filename)
    return match.group("final") if match else None


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(STAMP_FORMAT)


def new_rotated_name(live: str, moment: datetime, taken: set[str]) -> RotatedName:
    """A fresh name for rotating ``live`` now; ``taken`` holds the directory's current names."""
    when = stamp(moment)
    for seq in range(1, 1_000_000):
        candidate = RotatedName(stamp=when, seq=seq, live=live, ext="")
        names = {candidate.pending_name, *(candidate.archive_name(kind) for kind in EXTENSIONS)}
        names |= {tmp_name(name) for name in names}
        if not names & taken:
            return candidate
    raise RuntimeError(f"no free rotation name for {live} at {when}")
