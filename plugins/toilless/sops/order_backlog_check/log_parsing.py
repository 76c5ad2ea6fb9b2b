"""The order processor's log read into a bounded :class:`RunSummary` (no Airflow import, no I/O).

The lines come from files (``log_files``) or a pod (``toilless.hooks.kubernetes``); ``verdict`` judges the summary.

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

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

_TIMESTAMP = re.compile(
    r"^\s*\[?(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,6})?(?:Z|[+-]\d{2}:?\d{2})?)\]?"
)
_STARTUP = re.compile(r"\bStartup\.\.\.")
_PROCESSING = re.compile(r"\bProcessing Order #?(?P<order>\w[\w-]*)")
_PROCESSED = re.compile(r"\bOrder (?:#?(?P<order>\w[\w-]*) )?Processed\b", re.IGNORECASE)
_ALL_DONE = re.compile(r"\bAll Orders processed\.")
_ERROR = re.compile(r"\bError Processing Order(?: #?(?P<order>\w[\w-]*))?\.? *Error #?(?P<code>\w+)")

#: Bounds on what one run summary holds, whatever the log contains (it goes to XCom, the triggerer and Slack).
MAX_LINE_CHARS = 500  # characters kept of one quoted log line
MAX_EXCERPT_LINES = 50  # lines quoted from the end of the run, whatever excerpt_lines says
MAX_ERROR_EXCERPT_LINES = 5
MAX_LISTED_ERRORS = 20  # distinct order/error keys listed in the summary (the most frequent)
MAX_TRACKED_ERRORS = 1000  # distinct keys counted while reading; more are counted, not told apart
MAX_ID_CHARS = 64  # an order id or error number longer than this is shortened (with a hash, to stay distinct)
MAX_NOTES = 20


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
