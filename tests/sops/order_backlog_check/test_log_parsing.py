"""The processor's log read into a run summary: timestamps, the latest run, errors attributed to orders."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sandbox.order_backlog_check_data import processor_log
from tests.sops.order_backlog_check.scenarios import NOW
from toilless.sops.order_backlog_check.log_parsing import (
    RunSummary,
    latest_run_lines,
    parse_timestamp,
    summarize_run,
)


# -- parsing ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(
            "2026-11-23 09:00:01,100 INFO Startup...", datetime(2026, 11, 23, 9, 0, 1, 100000, UTC), id="comma"
        ),
        pytest.param("2026-11-23T09:00:01Z Startup...", datetime(2026, 11, 23, 9, 0, 1, tzinfo=UTC), id="iso-z"),
        pytest.param(
            "[2026-11-23 10:00:01+01:00] Startup...", datetime(2026, 11, 23, 9, 0, 1, tzinfo=UTC), id="offset"
        ),
        pytest.param("Startup...", None, id="none"),
    ],
)
def test_parse_timestamp(line: str, expected: datetime | None) -> None:
    assert parse_timestamp(line) == expected


def test_naive_timestamps_use_the_configured_timezone() -> None:
    moment = parse_timestamp("2026-11-23 10:00:00 Startup...", "Europe/Berlin")
    assert moment is not None
    assert moment.astimezone(UTC) == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_reading_starts_at_the_latest_startup_across_files() -> None:
    older = ["a Startup...", "b Processing Order 1", "c Order Processed", "d Startup...", "e Processing Order 2"]
    newer = ["f Order Processed", "g Processing Order 3"]
    lines, found = latest_run_lines([newer, older])
    assert found
    assert lines == ["d Startup...", "e Processing Order 2", "f Order Processed", "g Processing Order 3"]


def test_without_startup_everything_is_kept() -> None:
    lines, found = latest_run_lines([["x Processing Order 1"], ["y Order Processed"]])
    assert not found
    assert lines == ["y Order Processed", "x Processing Order 1"]


def test_stuck_error_is_attributed_to_the_open_order() -> None:
    lines = [
        "2026-11-23 09:00:00 INFO Startup...",
        "2026-11-23 09:00:01 INFO Processing Order 4",
        "2026-11-23 09:00:13 INFO Order Processed",
        "2026-11-23 09:00:14 INFO Processing Order 5",
        *[f"2026-11-23 09:0{minute}:00 ERROR Error Processing Order. Error #12" for minute in range(1, 6)],
    ]
    summary = summarize_run(lines, found_startup=True)
    assert (summary.tail_error_order, summary.tail_error_code, summary.tail_error_repeats) == ("5", "12", 5)
    assert summary.orders_processed == 1
    assert summary.errors == {"5/12": 5}
    assert summary.last_progress_at == datetime(2026, 11, 23, 9, 0, 14, tzinfo=UTC)
    assert not summary.tail_errors_mixed


def test_explicit_order_ids_win() -> None:
    lines = [
        "2026-11-23 09:00:00 Startup...",
        "2026-11-23 09:00:01 Processing Order 7",
        "2026-11-23 09:00:02 Processing Order 8",
        "2026-11-23 09:00:03 Error Processing Order 7. Error #3",
        "2026-11-23 09:00:04 Error Processing Order 7. Error #3",
    ]
    summary = summarize_run(lines, found_startup=True)
    assert summary.tail_error_order == "7"
    assert summary.tail_error_code == "3"


def test_progress_clears_the_tail() -> None:
    lines = [
        "2026-11-23 09:00:00 Startup...",
        "2026-11-23 09:00:01 Processing Order 1",
        "2026-11-23 09:00:02 Error Processing Order. Error #12",
        "2026-11-23 09:00:03 Error Processing Order. Error #12",
        "2026-11-23 09:00:04 Error Processing Order. Error #12",
        "2026-11-23 09:00:05 Order Processed",
    ]
    summary = summarize_run(lines, found_startup=True)
    assert summary.tail_error_repeats == 0
    assert summary.error_count == 3


def test_summary_round_trips_through_json() -> None:
    lines, _found = latest_run_lines([processor_log("stuck", now=NOW)])
    summary = summarize_run(lines, found_startup=True)
    assert RunSummary.from_dict(summary.as_dict()) == summary
