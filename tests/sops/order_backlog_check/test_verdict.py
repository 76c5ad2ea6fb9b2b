"""Verdicts (stuck, crashed/silent, overloaded, errors, healthy) and the recovery check after a restart."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sandbox.order_backlog_check_data import processor_log, recovery_lines
from tests.sops.order_backlog_check.scenarios import NOW, diagnose
from toilless.sops.order_backlog_check.capacity import Capacity, assess_capacity
from toilless.sops.order_backlog_check.log_parsing import (
    latest_run_lines,
    summarize_run,
)
from toilless.sops.order_backlog_check.verdict import (
    CRASHED_SILENT,
    ERRORS,
    HEALTHY,
    OVERLOADED,
    STUCK,
    Backlog,
    Thresholds,
    classify,
    recovery_seen,
)


# -- verdicts --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scenario", "outstanding", "oldest", "expected"),
    [
        pytest.param("healthy", 40, 30, HEALTHY, id="healthy"),
        pytest.param("stuck", 40, 30, STUCK, id="stuck"),
        pytest.param("stuck", 50_000, 600, STUCK, id="stuck-beats-overloaded"),
        pytest.param("crashed_silent", 300, 200, CRASHED_SILENT, id="silent"),
        pytest.param("overloaded", 5000, 90, OVERLOADED, id="over-capacity"),
        pytest.param("healthy", 1500, 300, OVERLOADED, id="too-old"),
        pytest.param("errors", 40, 30, ERRORS, id="errors-while-progressing"),
    ],
)
def test_verdicts(scenario: str, outstanding: int, oldest: float, expected: str) -> None:
    verdict, _ = diagnose(scenario, outstanding, oldest)
    assert verdict.verdict == expected, verdict.reasons
    assert verdict.reasons


def test_stuck_verdict_carries_the_evidence() -> None:
    verdict, summary = diagnose("stuck", 40)
    assert verdict.stuck_order == "11"
    assert verdict.error_code == "12"
    assert verdict.error_repeats >= 3
    assert verdict.restartable
    assert verdict.incident_key == "stuck:order-11:error-12"
    assert any("Error #12" in line for line in summary.excerpt)


def test_finished_idle_processor_with_nothing_to_do_is_not_silent() -> None:
    lines = ["2026-11-23 06:00:00 Startup...", "2026-11-23 06:00:01 All Orders processed."]
    summary = summarize_run(lines, found_startup=True)
    backlog = Backlog(outstanding=0, oldest_created_at=None)
    assessment = assess_capacity(Capacity(), 0, summary)
    verdict = classify(summary, backlog, assessment, Thresholds(), Capacity(), NOW)
    assert verdict.verdict == HEALTHY


def test_empty_log_is_silent() -> None:
    summary = summarize_run([], found_startup=False)
    backlog = Backlog(outstanding=10, oldest_created_at=NOW)
    verdict = classify(summary, backlog, assess_capacity(Capacity(), 10, summary), Thresholds(), Capacity(), NOW)
    assert verdict.verdict == CRASHED_SILENT
    assert verdict.incident_key == "silent:run-never"


def test_recovery_needs_a_new_run_progress_and_a_falling_backlog() -> None:
    restarted = NOW - timedelta(minutes=2)
    old_run = summarize_run(latest_run_lines([processor_log("stuck", now=NOW)])[0], found_startup=True)
    assert not recovery_seen(old_run, 10, restarted_at=restarted, baseline_outstanding=40)[0]
    new_run = summarize_run(recovery_lines(start=NOW - timedelta(minutes=1), first_order=11), found_startup=True)
    ok, detail = recovery_seen(new_run, 35, restarted_at=restarted, baseline_outstanding=40)
    assert ok
    assert "40 -> 35" in detail
    assert not recovery_seen(new_run, 40, restarted_at=restarted, baseline_outstanding=40)[0]
