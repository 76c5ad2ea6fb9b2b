"""The order-processor backlog SOP as pure logic: read the processor's log, size its capacity, give a verdict.

No Airflow import. The DAG ``order_backlog_check`` feeds it log lines (from files, rotated archives or a
pod) and the backlog measured in the orders database, and acts on the :class:`Verdict`.

The processor's log (SOPS.md, "Order-processor backlog") looks like::

    2026-11-23 09:00:00,012 INFO Startup...
    2026-11-23 09:00:01,100 INFO Processing Order 4
    2026-11-23 09:00:13,420 INFO Order Processed
    2026-11-23 09:00:14,002 ERROR Error Processing Order. Error #12
    2026-11-23 09:45:10,530 INFO All Orders processed.

Timestamps are optional (a line without one inherits the previous line's); an order id may follow
``Order Processed`` or ``Error Processing Order``; without one the line belongs to the most recently started
open order.
"""

from __future__ import annotations

import copy
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from toilless import order_restart
from toilless.common import gate
from toilless.common.errors import InvalidInput
from toilless.common.policy_params import LooseningParamError

HEALTHY = "healthy"
STUCK = "stuck"
CRASHED_SILENT = "crashed_silent"
OVERLOADED = "overloaded"
ERRORS = "errors"
VERDICTS = (HEALTHY, STUCK, CRASHED_SILENT, OVERLOADED, ERRORS)
#: Verdicts a restart can cure: the processor is not making progress.
RESTARTABLE = frozenset({STUCK, CRASHED_SILENT})

_TIMESTAMP = re.compile(
    r"^\s*\[?(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,6})?(?:Z|[+-]\d{2}:?\d{2})?)\]?"
)
_STARTUP = re.compile(r"\bStartup\.\.\.")
_PROCESSING = re.compile(r"\bProcessing Order #?(?P<order>\w[\w-]*)")
_PROCESSED = re.compile(r"\bOrder (?:#?(?P<order>\w[\w-]*) )?Processed\b", re.IGNORECASE)
_ALL_DONE = re.compile(r"\bAll Orders processed\.")
_ERROR = re.compile(r"\bError Processing Order(?: #?(?P<order>\w[\w-]*))?\.? *Error #?(?P<code>\w+)")

#: Rotated files: <name>.1, <name>.2.gz, ... and archives <stem>.<timestamp>.<seq>.log[.gz|.zst].
_NUMBERED = re.compile(r"^\.(?P<n>\d+)(?P<ext>\.gz|\.zst)?$")
_ARCHIVE = re.compile(r"^\.(?P<ts>\d{8}(?:T?\d{4,6}Z?)?|\d{4}-\d{2}-\d{2}[T_-]?[\d:-]*)(?:\.(?P<seq>\d+))?")


class LogAccessError(ValueError):
    """A log path is not allowed or cannot be read; the message says why.

    Not :class:`InvalidInput` by itself: a log missing for a moment during a rotation is worth a retry. A configured
    or Param path outside the roots is refused as :class:`SettingsError` by :func:`resolve_settings`.
    """


#: Bounds on what one run summary holds, whatever the log contains (it goes to XCom, the triggerer and Slack).
MAX_LINE_CHARS = 500  # characters kept of one quoted log line
MAX_EXCERPT_LINES = 50  # lines quoted from the end of the run, whatever excerpt_lines says
MAX_ERROR_EXCERPT_LINES = 5
MAX_LISTED_ERRORS = 20  # distinct order/error keys listed in the summary (the most frequent)
MAX_TRACKED_ERRORS = 1000  # distinct keys counted while reading; more are counted, not told apart
MAX_ID_CHARS = 64  # an order id or error number longer than this is shortened (with a hash, to stay distinct)
MAX_NOTES = 20
#: Decompressed bytes read from one rotated file before giving up on it (a small .gz can inflate without limit).
DEFAULT_MAX_DECOMPRESSED_BYTES = 1 << 30
_CHUNK = 1 << 20


def bounded_line(text: str, limit: int = MAX_LINE_CHARS) -> str:
    """One log line for an excerpt: secrets masked, at most ``limit`` characters, saying how many were cut."""
    from toilless.common.redaction import mask_secrets

    text = text.rstrip("\n")
    if len(text) > limit:
        # Mask before cutting (a secret must not survive half-cut) but never run patterns over megabytes.
        head = mask_secrets(text[: limit * 2])[:limit]
        note = f" … ({len(text) - len(head):,} characters cut)"
        return head[: max(limit - len(note), 0)] + note
    return mask_secrets(text)


def bounded_id(value: str) -> str:
    """An order id or error number from the log, at most :data:`MAX_ID_CHARS` (distinct ids stay distinct)."""
    if len(value) <= MAX_ID_CHARS:
        return value
    import hashlib

    digest = hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:10]
    return f"{value[: MAX_ID_CHARS - 12]}~{digest}"


# -- reading the log -----------------------------------------------------------------------------------------
@dataclass
class RunSummary:
    """What the latest run of the processor did, read from its log from the last ``Startup...`` on.

    Every list and mapping in it is bounded (see the ``MAX_*`` constants); ``notes`` says what was cut or skipped.
    """

    found_startup: bool = False
    started_at: datetime | None = None
    last_line_at: datetime | None = None
    last_progress_at: datetime | None = None
    orders_started: int = 0
    orders_processed: int = 0
    first_processing_at: datetime | None = None
    last_processed_at: datetime | None = None
    finished: bool = False  # "All Orders processed." after the last Startup
    finished_at: datetime | None = None
    error_count: int = 0
    # "order/code" -> count, the MAX_LISTED_ERRORS most frequent; the rest are counted in errors_not_listed.
    errors: dict[str, int] = field(default_factory=dict)
    errors_not_listed: int = 0
    errors_distinct: int = 0  # distinct order/code keys seen (at least this many when errors_distinct_capped)
    errors_distinct_capped: bool = False
    # The run's tail: errors after the last progress, all on one order with one code?
    tail_error_order: str | None = None
    tail_error_code: str | None = None
    tail_error_repeats: int = 0
    tail_errors_mixed: bool = False
    excerpt: list[str] = field(default_factory=list)
    error_excerpt: list[str] = field(default_factory=list)
    lines_read: int = 0
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was skipped or cut while reading, for the reader

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, datetime):
                data[key] = value.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSummary:
        """Rebuild a summary from :meth:`as_dict` (what one task hands the next through XCom)."""
        values: dict[str, Any] = {}
        for item in fields(cls):
            value = data.get(item.name)
            if item.name.endswith("_at") and isinstance(value, str):
                value = datetime.fromisoformat(value)
            if value is not None:
                values[item.name] = value
        return cls(**values)

    def add_note(self, note: str) -> None:
        if len(self.notes) < MAX_NOTES:
            self.notes.append(bounded_line(note))
        elif len(self.notes) == MAX_NOTES:
            self.notes.append("… more notes cut")

    def observed_seconds_per_order(self, slots: int) -> float | None:
        """Seconds one slot spends on one order, from the run's own pace (None without enough data)."""
        if not self.orders_processed or not self.first_processing_at or not self.last_processed_at:
            return None
        elapsed = (self.last_processed_at - self.first_processing_at).total_seconds()
        if elapsed <= 0:
            return None
        return elapsed * max(slots, 1) / self.orders_processed


def parse_timestamp(text: str, timezone: str = "UTC") -> datetime | None:
    """The leading timestamp of a log line, timezone-aware (naive ones are in ``timezone``)."""
    match = _TIMESTAMP.match(text)
    if not match:
        return None
    return _parse_stamp(match.group("ts"), timezone)


@lru_cache(maxsize=4096)
def _parse_stamp(stamp: str, timezone: str) -> datetime | None:
    # Cached: consecutive lines often share a timestamp, and a flood of lines usually does.
    raw = stamp.replace(",", ".").replace(" ", "T")
    if raw.endswith("Z"):
        raw = raw[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(timezone))


def latest_run_lines(lines_newest_file_first: Iterable[Sequence[str]]) -> tuple[list[str], bool]:
    """Join per-file line lists (newest file first) back to front until a ``Startup...`` is found.

    Returns the lines from the latest ``Startup...`` on (inclusive) and whether one was found. Without one,
    all the given lines are returned so the caller can still see errors and silence.
    """
    collected: list[str] = []
    for file_lines in lines_newest_file_first:
        for index in range(len(file_lines) - 1, -1, -1):
            if _STARTUP.search(file_lines[index]):
                return list(file_lines[index:]) + collected, True
        collected = list(file_lines) + collected
    return collected, False


class _TailErrors:
    """The errors since the last progress: how often the last (order, code) repeated, and whether others mixed in.

    Bounded: past MAX_TRACKED_ERRORS distinct pairs the tail is mixed anyway, so pairs are no longer told apart.
    """

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.total = 0
        self.last: tuple[str, str] | None = None
        self.overflow = False

    def add(self, pair: tuple[str, str]) -> None:
        self.total += 1
        self.last = pair
        if pair in self.counts or len(self.counts) < MAX_TRACKED_ERRORS:
            self.counts[pair] = self.counts.get(pair, 0) + 1
        else:
            self.overflow = True


def summarize_run(
    lines: Sequence[str],
    *,
    found_startup: bool,
    timezone: str = "UTC",
    excerpt_lines: int = 15,
) -> RunSummary:
    """Read one run's lines (from its ``Startup...`` on) into a bounded :class:`RunSummary`."""
    summary = RunSummary(found_startup=found_startup, lines_read=len(lines))
    open_orders: list[str] = []
    current_at: datetime | None = None
    tail = _TailErrors()
    errors: dict[str, int] = {}
    untracked_errors = 0
    first_error_index: int | None = None
    for index, text in enumerate(lines):
        stamp = parse_timestamp(text, timezone)
        current_at = stamp or current_at
        # Plain substring tests first: most lines match nothing, and a regex search costs more on long lines.
        if "Startup..." in text and _STARTUP.search(text):
            # A second Startup in the given lines means the caller passed several runs: start over.
            summary = RunSummary(found_startup=True, lines_read=len(lines), started_at=current_at)
            open_orders, tail, first_error_index = [], _TailErrors(), None
            errors, untracked_errors = {}, 0
            summary.last_progress_at = current_at
            continue
        if "Error Processing Order" in text and (match := _ERROR.search(text)):
            order = bounded_id(match.group("order") or (open_orders[-1] if open_orders else "unknown"))
            code = bounded_id(match.group("code"))
            summary.error_count += 1
            key = f"{order}/{code}"
            if key in errors or len(errors) < MAX_TRACKED_ERRORS:
                errors[key] = errors.get(key, 0) + 1
            else:
                untracked_errors += 1
            tail.add((order, code))
            if first_error_index is None:
                first_error_index = index
        elif match := _PROCESSING.search(text):
            order = bounded_id(match.group("order"))
            # Only open orders are needed (to attribute an error without an id); a flood of starts stays bounded.
            if len(open_orders) >= MAX_TRACKED_ERRORS:
                del open_orders[0]
            open_orders.append(order)
            summary.orders_started += 1
            summary.first_processing_at = summary.first_processing_at or current_at
            summary.last_progress_at = current_at
            tail = _TailErrors()
        elif match := _PROCESSED.search(text):
            order = bounded_id(match.group("order")) if match.group("order") else None
            if order and order in open_orders:
                open_orders.remove(order)
            elif open_orders:
                open_orders.pop()
            summary.orders_processed += 1
            summary.last_processed_at = current_at
            summary.last_progress_at = current_at
            tail = _TailErrors()
        elif _ALL_DONE.search(text):
            summary.finished = True
            summary.finished_at = current_at
            summary.last_progress_at = current_at
            tail = _TailErrors()
        if stamp:
            summary.last_line_at = stamp
    if tail.last is not None:
        summary.tail_error_order, summary.tail_error_code = tail.last
        summary.tail_error_repeats = tail.counts.get(tail.last, 1)
        summary.tail_errors_mixed = tail.overflow or summary.tail_error_repeats != tail.total
    top = sorted(errors.items(), key=lambda item: (-item[1], item[0]))[:MAX_LISTED_ERRORS]
    summary.errors = dict(top)
    summary.errors_not_listed = summary.error_count - sum(summary.errors.values())
    summary.errors_distinct = len(errors) + (1 if untracked_errors else 0)
    summary.errors_distinct_capped = bool(untracked_errors)
    if summary.errors_not_listed:
        more = "at least " if untracked_errors else ""
        summary.add_note(
            f"{summary.errors_not_listed:,} errors of {more}{summary.errors_distinct - len(summary.errors):,} more "
            f"distinct order/error pairs not listed (the {len(summary.errors)} most frequent are)"
        )
    wanted = max(0, min(int(excerpt_lines), MAX_EXCERPT_LINES))
    summary.excerpt = [bounded_line(line) for line in lines[len(lines) - wanted :]] if wanted else []
    if first_error_index is not None:
        quoted = lines[first_error_index : first_error_index + MAX_ERROR_EXCERPT_LINES]
        summary.error_excerpt = [bounded_line(line) for line in quoted]
    return summary


# -- rotated files -------------------------------------------------------------------------------------------
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


# -- capacity ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Capacity:
    """The processor's configured figures (SOPS.md: 2 processes, 4 orders at a time, 10-15 s, hourly)."""

    processes: int = 2
    orders_at_a_time: int = 4
    seconds_per_order_min: float = 10.0
    seconds_per_order_max: float = 15.0
    run_interval_minutes: float = 60.0
    min_run_interval_minutes: float = 5.0

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Capacity:
        try:
            capacity = cls(
                processes=int(config["processes"]),
                orders_at_a_time=int(config["orders_at_a_time"]),
                seconds_per_order_min=float(config["seconds_per_order_min"]),
                seconds_per_order_max=float(config["seconds_per_order_max"]),
                run_interval_minutes=float(config["run_interval_minutes"]),
                min_run_interval_minutes=float(config.get("min_run_interval_minutes", 5)),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"processor settings are incomplete or not numbers: {err}") from err
        if min(capacity.processes, capacity.orders_at_a_time) < 1:
            raise ValueError("processes and orders_at_a_time must be at least 1")
        if not 0 < capacity.seconds_per_order_min <= capacity.seconds_per_order_max:
            raise ValueError("seconds_per_order_min must be positive and not above seconds_per_order_max")
        if capacity.run_interval_minutes <= 0 or capacity.min_run_interval_minutes <= 0:
            raise ValueError("run intervals must be positive")
        return capacity

    @property
    def slots(self) -> int:
        return self.processes * self.orders_at_a_time

    def per_run(self, seconds_per_order: float) -> int:
        """Orders one run can finish before the next is due."""
        return math.floor(self.slots * self.run_interval_minutes * 60 / seconds_per_order)


@dataclass(frozen=True)
class CapacityAssessment:
    seconds_per_order: float
    seconds_per_order_source: str  # "observed" | "configured (worst case)"
    capacity_per_run: int
    capacity_per_run_best: int
    throughput_per_hour: float
    outstanding: int
    drain_minutes: float
    runs_needed: int
    suggested_interval_minutes: float
    suggested_processes: int
    over_capacity: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def assess_capacity(
    capacity: Capacity, outstanding: int, summary: RunSummary | None, min_orders_for_throughput: int = 8
) -> CapacityAssessment:
    """Compare the backlog with what the processor can do per run, and suggest a run frequency.

    The observed pace of the latest run wins over the configured worst case once it is based on enough
    orders, but never below the configured best case (a burst of quick orders must not hide a slow processor).
    """
    observed = summary.observed_seconds_per_order(capacity.slots) if summary else None
    if observed is not None and summary is not None and summary.orders_processed >= min_orders_for_throughput:
        seconds_per_order = max(observed, capacity.seconds_per_order_min)
        source = "observed"
    else:
        seconds_per_order = capacity.seconds_per_order_max
        source = "configured (worst case)"
    per_run = max(capacity.per_run(seconds_per_order), 1)
    runs_needed = max(math.ceil(outstanding / per_run), 1)
    interval = max(capacity.run_interval_minutes / runs_needed, capacity.min_run_interval_minutes)
    processes = math.ceil(
        outstanding * seconds_per_order / (capacity.orders_at_a_time * capacity.run_interval_minutes * 60)
    )
    return CapacityAssessment(
        seconds_per_order=round(seconds_per_order, 2),
        seconds_per_order_source=source,
        capacity_per_run=per_run,
        capacity_per_run_best=capacity.per_run(capacity.seconds_per_order_min),
        throughput_per_hour=round(capacity.slots * 3600 / seconds_per_order, 1),
        outstanding=outstanding,
        drain_minutes=round(outstanding * seconds_per_order / capacity.slots / 60, 1),
        runs_needed=runs_needed,
        suggested_interval_minutes=math.floor(interval),
        suggested_processes=max(processes, capacity.processes),
        over_capacity=outstanding > per_run,
    )


# -- the verdict ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Backlog:
    outstanding: int
    oldest_created_at: datetime | None
    overdue: int = 0  # outstanding orders older than the age threshold

    def oldest_age_minutes(self, now: datetime) -> float | None:
        if self.oldest_created_at is None:
            return None
        return round((now - self.oldest_created_at).total_seconds() / 60, 1)


@dataclass(frozen=True)
class Thresholds:
    outstanding_orders: int = 1000
    oldest_order_age_minutes: float = 120
    stuck_error_repeats: int = 3
    silent_grace_minutes: float = 10
    min_orders_for_throughput: int = 8

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Thresholds:
        try:
            thresholds = cls(
                outstanding_orders=int(config["outstanding_orders"]),
                oldest_order_age_minutes=float(config["oldest_order_age_minutes"]),
                stuck_error_repeats=int(config["stuck_error_repeats"]),
                silent_grace_minutes=float(config["silent_grace_minutes"]),
                min_orders_for_throughput=int(config.get("min_orders_for_throughput", 8)),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"thresholds are incomplete or not numbers: {err}") from err
        if (
            thresholds.outstanding_orders < 0
            or thresholds.oldest_order_age_minutes <= 0
            or thresholds.stuck_error_repeats < 2
            or thresholds.silent_grace_minutes < 0
        ):
            raise ValueError(
                "thresholds: outstanding_orders >= 0, oldest_order_age_minutes > 0, "
                "stuck_error_repeats >= 2, silent_grace_minutes >= 0"
            )
        return thresholds


@dataclass(frozen=True)
class Verdict:
    verdict: str
    reasons: list[str]
    incident_key: str | None  # what a restart is for; None when no restart is warranted
    stuck_order: str | None = None
    error_code: str | None = None
    error_repeats: int = 0
    minutes_since_progress: float | None = None
    backlog_over_threshold: bool = False

    @property
    def restartable(self) -> bool:
        return self.verdict in RESTARTABLE

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "restartable": self.restartable}


def classify(
    summary: RunSummary,
    backlog: Backlog,
    assessment: CapacityAssessment,
    thresholds: Thresholds,
    capacity: Capacity,
    now: datetime,
) -> Verdict:
    """Tell stuck from crashed/silent from overloaded from healthy, with the evidence behind it.

    Order matters: a processor repeating one error is stuck whatever the backlog; one that stopped making
    progress is crashed/silent; only a processor that makes progress can be "overloaded".
    """
    reasons: list[str] = []
    over_threshold = backlog.outstanding > thresholds.outstanding_orders
    age = backlog.oldest_age_minutes(now)
    since_progress = (
        round((now - summary.last_progress_at).total_seconds() / 60, 1) if summary.last_progress_at else None
    )
    if summary.tail_error_repeats >= thresholds.stuck_error_repeats and not summary.tail_errors_mixed:
        order, code = summary.tail_error_order, summary.tail_error_code
        reasons.append(
            f"the processor repeated `Error #{code}` {summary.tail_error_repeats} times on order {order} "
            "with no progress after it"
        )
        return Verdict(
            STUCK,
            reasons,
            incident_key=f"stuck:order-{order}:error-{code}",
            stuck_order=order,
            error_code=code,
            error_repeats=summary.tail_error_repeats,
            minutes_since_progress=since_progress,
            backlog_over_threshold=over_threshold,
        )
    silent_limit = capacity.run_interval_minutes + thresholds.silent_grace_minutes
    if not summary.found_startup and summary.lines_read == 0:
        reasons.append("the processor's log is empty: it has not run")
        silent = True
    elif since_progress is None:
        reasons.append("no progress line with a timestamp in the latest run")
        silent = True
    else:
        silent = since_progress > silent_limit
        if silent:
            state = "finished its last run" if summary.finished else "has made no progress"
            reasons.append(
                f"the processor {state} {since_progress:.0f} min ago, longer than its run interval "
                f"plus grace ({silent_limit:.0f} min)"
            )
    # A finished run with nothing left to do is not silent: the processor may just be idle.
    if silent and not (summary.finished and backlog.outstanding == 0):
        run_start = summary.started_at.isoformat() if summary.started_at else "never"
        return Verdict(
            CRASHED_SILENT,
            reasons,
            incident_key=f"silent:run-{run_start}",
            minutes_since_progress=since_progress,
            backlog_over_threshold=over_threshold,
        )
    if assessment.over_capacity or (over_threshold and age is not None and age > thresholds.oldest_order_age_minutes):
        if assessment.over_capacity:
            reasons.append(
                f"{backlog.outstanding} outstanding orders exceed one run's capacity of "
                f"{assessment.capacity_per_run} (at {assessment.seconds_per_order} s/order, "
                f"{assessment.seconds_per_order_source})"
            )
        else:
            reasons.append(
                f"{backlog.outstanding} outstanding orders, the oldest waiting {age:.0f} min "
                f"(limit {thresholds.oldest_order_age_minutes:.0f} min)"
            )
        return Verdict(
            OVERLOADED,
            reasons,
            None,
            minutes_since_progress=since_progress,
            backlog_over_threshold=over_threshold,
        )
    if summary.error_count:
        reasons.append(f"{summary.error_count} errors in the latest run while it kept making progress")
        return Verdict(
            ERRORS,
            reasons,
            None,
            minutes_since_progress=since_progress,
            backlog_over_threshold=over_threshold,
        )
    reasons.append(
        f"{backlog.outstanding} outstanding orders within one run's capacity of "
        f"{assessment.capacity_per_run}; the processor is making progress"
    )
    return Verdict(HEALTHY, reasons, None, minutes_since_progress=since_progress, backlog_over_threshold=over_threshold)


# -- restart bookkeeping and recovery ------------------------------------------------------------------------
def restart_already_done(marker: dict[str, Any] | None, incident_key: str, now: datetime, memory_hours: float) -> bool:
    """True if ``marker`` (``{"incident", "restarted_at"}``) records a recent restart for this incident."""
    if not marker or marker.get("incident") != incident_key:
        return False
    try:
        restarted_at = datetime.fromisoformat(str(marker.get("restarted_at")))
    except ValueError:
        # A marker for this incident we cannot date: err on the side of not restarting again.
        return True
    if restarted_at.tzinfo is None:
        restarted_at = restarted_at.replace(tzinfo=ZoneInfo("UTC"))
    if gate.in_the_future(restarted_at, now=now, what="restart marker"):
        # Records no restart anyone made; trusting it would mean "already restarted" for ever.
        return False
    return now - restarted_at < timedelta(hours=memory_hours)


def recovery_seen(
    summary: RunSummary,
    outstanding: int,
    *,
    restarted_at: datetime,
    baseline_outstanding: int,
) -> tuple[bool, str]:
    """After a restart: has the processor started again, processed orders, and has the backlog fallen?"""
    if not summary.found_startup or summary.started_at is None or summary.started_at < restarted_at:
        return False, "no `Startup...` since the restart yet"
    if summary.orders_processed == 0 and not summary.finished:
        return False, "started again but has processed no order yet"
    if outstanding >= baseline_outstanding and outstanding > 0:
        return (
            False,
            f"processing again, but the backlog has not fallen ({outstanding} >= {baseline_outstanding})",
        )
    return True, (
        f"started {summary.started_at.isoformat()}, processed {summary.orders_processed} orders, "
        f"backlog {baseline_outstanding} -> {outstanding}"
    )


def format_duration(minutes: float | None) -> str:
    if minutes is None:
        return "unknown"
    if minutes < 90:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h"


@dataclass(frozen=True)
class RestartDecision:
    act: bool
    reason: str
    allowed_from: datetime | None = None
    already_done: bool = False

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["allowed_from"] = self.allowed_from.isoformat() if self.allowed_from else None
        return data


def decide_restart(
    verdict: Verdict,
    *,
    method: str,
    allow_restart: bool,
    off_reason: str | None = None,
    marker: dict[str, Any] | None,
    policy_allowed: bool,
    policy_reason: str,
    policy_allowed_from: datetime | None,
    now: datetime,
    memory_hours: float,
) -> RestartDecision:
    """Whether to restart now. Each "no" says why; the policy "no" also says from when it would be allowed."""
    if not verdict.restartable or verdict.incident_key is None:
        return RestartDecision(False, f"a {verdict.verdict} processor is not cured by a restart")
    if method == "none":
        return RestartDecision(False, "restarts are switched off (restart.method = none)")
    if not allow_restart:
        return RestartDecision(False, off_reason or "restarts are switched off for this run (allow_restart = false)")
    if (
        marker
        and marker.get("state") != "failed"
        and restart_already_done(marker, verdict.incident_key, now, memory_hours)
    ):
        return RestartDecision(
            False,
            f"already restarted for this incident ({verdict.incident_key}) at {marker.get('restarted_at')}: "
            "a second restart would not help",
            already_done=True,
        )
    if not policy_allowed:
        return RestartDecision(False, f"not now: {policy_reason}", allowed_from=policy_allowed_from)
    return RestartDecision(True, f"restarting for {verdict.incident_key}: {policy_reason}")


# -- run settings --------------------------------------------------------------------------------------------
_PARAM_THRESHOLDS = {
    "outstanding_threshold": "outstanding_orders",
    "oldest_order_age_minutes": "oldest_order_age_minutes",
    "stuck_error_repeats": "stuck_error_repeats",
}


class SettingsError(InvalidInput):
    """A run Param or a setting is invalid; nothing has been read or changed (never retried)."""


def _is_configured_log(resolved: str, source: Any, path: Any, roots: Sequence[str]) -> bool:
    """True if ``resolved`` is the configured log file (the configuration reads a file, and it is that file)."""
    if source != "file" or not path:
        return False
    try:
        return str(resolve_log_path(str(path), roots)) == resolved
    except LogAccessError:
        return False


def resolve_settings(config: dict[str, Any], toilless_config: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """This run's settings: the SOP config, the install-wide policies, then the run's Params on top.

    Every value is checked here, before anything is read or changed: numbers must be integers (a string
    such as ``"1; DROP TABLE orders"`` is refused, never passed on), a log path must lie under a configured
    root, windows must parse. Returns a JSON-able dict the later steps (and the trigger) use as is.
    """
    settings = copy.deepcopy(config)
    settings["thresholds"] = dict(config.get("thresholds") or {})
    settings["log"] = dict(config.get("log") or {})
    for param in _PARAM_THRESHOLDS:
        value = params.get(param)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise SettingsError(f"Param {param} must be an integer, got {value!r}")
    try:
        # Params may tighten the configured policy, never loosen it (toilless.order_restart).
        settings["thresholds"] = order_restart.tighten_thresholds(settings["thresholds"], params)
        settings["allow_restart"] = order_restart.allow_restart(config, params)
        Thresholds.from_config(settings["thresholds"])
        Capacity.from_config(settings.get("processor") or {})
    except ValueError as err:  # LooseningParamError included
        raise SettingsError(str(err)) from err

    log_settings = settings["log"]
    if log_settings.get("source") not in ("file", "kubernetes"):
        raise SettingsError(f"log.source must be file or kubernetes, got {log_settings.get('source')!r}")
    roots = [str(root) for root in log_settings.get("allowed_roots") or []]
    raw_path = params.get("log_path")
    configured_source, configured_path = log_settings.get("source"), log_settings.get("path")
    if raw_path is not None:
        if not isinstance(raw_path, str):
            raise SettingsError(f"Param log_path must be a string, got {raw_path!r}")
        log_settings["source"] = "file"
        log_settings["path"] = raw_path
    for key, low, default in (
        ("max_files", 1, None),
        ("max_bytes", 1, None),
        ("excerpt_lines", 0, 15),
        ("max_decompressed_bytes", 1, DEFAULT_MAX_DECOMPRESSED_BYTES),
    ):
        value = log_settings.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise SettingsError(f"log.{key} must be an integer of at least {low}, got {value!r}")
        log_settings[key] = value
    if log_settings["source"] == "file":
        try:
            log_settings["path"] = str(resolve_log_path(str(log_settings.get("path") or ""), roots))
        except LogAccessError as err:
            raise SettingsError(str(err)) from err
    if raw_path is not None and not _is_configured_log(log_settings["path"], configured_source, configured_path, roots):
        # The log is the evidence for a restart: one chosen by whoever triggers the run (a crafted file, or a file
        # while the restart still targets the Deployment) may diagnose and report, never restart.
        settings["allow_restart"] = False
        settings["restart_off_reason"] = (
            "the log was chosen by the log_path Param, not the configured log: diagnose and report only"
        )

    hours, maintenance = gate.window_specs(toilless_config, config)
    try:
        gate.time_policy(toilless_config, config)  # the one place the windows are resolved and checked
        # A run may narrow business hours (applied on top of the configured ones), never widen them.
        run_hours = order_restart.run_business_hours(hours, params)
    except (LooseningParamError, gate.GateConfigError) as err:
        raise SettingsError(str(err)) from err
    settings["business_hours"] = hours
    settings["run_business_hours"] = run_hours
    settings["maintenance_window"] = maintenance

    restart = dict(config.get("restart") or {})
    if restart.get("method") not in ("kubernetes", "command", "none"):
        raise SettingsError(f"restart.method must be kubernetes, command or none, got {restart.get('method')!r}")
    command = restart.get("command")
    if restart["method"] == "command" and not (
        isinstance(command, list) and command and all(isinstance(part, str) and part for part in command)
    ):
        # Found here, not when restarting: by then the marker is written and each retry would fail the same way.
        raise SettingsError(f"restart.command must be a non-empty argv list of strings (no shell), got {command!r}")
    settings["restart"] = restart
    settings["dry_run"] = bool(params.get("dry_run", False))
    return settings
