"""The verdict: stuck, crashed/silent, overloaded, errors or healthy, with the evidence (no Airflow import).

Also whether a restart brought the processor back (:func:`recovery_seen`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from toilless.common.config import typed_settings
from toilless.sops.order_backlog_check.capacity import Capacity, CapacityAssessment
from toilless.sops.order_backlog_check.log_parsing import RunSummary

HEALTHY = "healthy"
STUCK = "stuck"
CRASHED_SILENT = "crashed_silent"
OVERLOADED = "overloaded"
ERRORS = "errors"
VERDICTS = (HEALTHY, STUCK, CRASHED_SILENT, OVERLOADED, ERRORS)
#: Verdicts a restart can cure: the processor is not making progress.
RESTARTABLE = frozenset({STUCK, CRASHED_SILENT})


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
        thresholds = typed_settings(cls, config, what="thresholds", optional=["min_orders_for_throughput"])
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
