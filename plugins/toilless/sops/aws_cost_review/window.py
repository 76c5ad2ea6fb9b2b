"""The review period: which month is reviewed, how much of it has elapsed, which months form the baseline.

Also the previous review day (anomalies are read since then) and the Cost Explorer history limit.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from toilless.common import cost_contracts
from toilless.common.policies import WEEKDAYS
from toilless.sops.aws_cost_review.errors import CostReviewError


@dataclass(frozen=True)
class ReviewWindow:
    """Which month is reviewed, how much of it has elapsed, and which months form the baseline.

    Data is read up to the day before ``as_of`` (Cost Explorer's end date is exclusive, and the review day
    itself is incomplete). On the 1st of a month the review month is therefore the previous, complete month.
    """

    as_of: date
    review_month: date  # first day of the reviewed month
    days_elapsed: int
    days_in_month: int
    baseline_months: tuple[date, ...]  # first days, oldest first

    @property
    def query_start(self) -> date:
        return self.baseline_months[0]

    @property
    def query_end(self) -> date:
        """Exclusive end of the Cost Explorer query."""
        return self.as_of

    @property
    def complete(self) -> bool:
        return self.days_elapsed == self.days_in_month

    def describe(self) -> str:
        month = f"{self.review_month:%B %Y}"
        span = "complete month" if self.complete else f"{self.days_elapsed} of {self.days_in_month} days"
        months = len(self.baseline_months)
        return (
            f"{month} ({span}, through {self.as_of - timedelta(days=1):%Y-%m-%d}) against the daily run "
            "rate of the "
            f"previous {months} month{'s' if months != 1 else ''} "
            f"({self.baseline_months[0]:%b %Y}-{self.baseline_months[-1]:%b %Y})"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "review_month": self.review_month.isoformat(),
            "days_elapsed": self.days_elapsed,
            "days_in_month": self.days_in_month,
            "baseline_months": [month.isoformat() for month in self.baseline_months],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReviewWindow:
        return cls(
            as_of=date.fromisoformat(data["as_of"]),
            review_month=date.fromisoformat(data["review_month"]),
            days_elapsed=int(data["days_elapsed"]),
            days_in_month=int(data["days_in_month"]),
            baseline_months=tuple(date.fromisoformat(month) for month in data["baseline_months"]),
        )


def days_in(month: date) -> int:
    return calendar.monthrange(month.year, month.month)[1]


def add_months(month: date, count: int) -> date:
    """First day of the month ``count`` months after (or before, if negative) ``month``."""
    index = month.year * 12 + (month.month - 1) + count
    return date(index // 12, index % 12 + 1, 1)


def review_window(as_of: date, lookback_months: int) -> ReviewWindow:
    if not 1 <= lookback_months <= 12:
        raise CostReviewError(f"look-back months must be between 1 and 12, got {lookback_months}")
    last_day = as_of - timedelta(days=1)
    month = last_day.replace(day=1)
    baseline = tuple(add_months(month, -offset) for offset in range(lookback_months, 0, -1))
    return ReviewWindow(
        as_of=as_of,
        review_month=month,
        days_elapsed=last_day.day,
        days_in_month=days_in(month),
        baseline_months=baseline,
    )


def parse_as_of(value: str | date | None, default: date) -> date:
    """The review's as-of date: ``value`` (YYYY-MM-DD) or, when empty, ``default`` (the run's date).

    A date after ``default`` is refused: Cost Explorer has no costs for the future, so the review would compare
    empty months and report an all-clear that means nothing.
    """
    if value in (None, ""):
        return default
    if isinstance(value, date):
        as_of = value
    else:
        text = str(value).strip()
        try:
            as_of = date.fromisoformat(text[:10])
        except ValueError as err:
            raise CostReviewError(f"as-of date {value!r} is not a date (YYYY-MM-DD)") from err
    if as_of > default:
        raise CostReviewError(
            f"as-of date {as_of.isoformat()} is in the future (after the run's date {default.isoformat()}): "
            "Cost Explorer has no costs for it yet, so the review would report a false all-clear"
        )
    return as_of


def check_history(
    window: ReviewWindow, today: date, history_months: int = cost_contracts.HISTORY_MONTHS_DEFAULT
) -> None:
    """Refuse a review whose query starts before the history Cost Explorer holds on ``today`` (the run's date).

    Real AWS answers such a GetCostAndUsage with ValidationException (moto answers it), so the review could never
    succeed: it fails at once with the earliest as-of date that works for this look-back.
    """
    earliest = cost_contracts.earliest_start(today, history_months)
    if window.query_start >= earliest:
        return
    months = len(window.baseline_months)
    # The review month must be ``months`` after ``earliest``; data is read up to the day before as-of.
    earliest_as_of = add_months(earliest, months) + timedelta(days=1)
    raise CostReviewError(
        f"as-of date {window.as_of.isoformat()} with {months} look-back month{'s' if months != 1 else ''} starts "
        f"the Cost Explorer query on {window.query_start.isoformat()}, before the {history_months} months of "
        f"history Cost Explorer holds on the run's date {today.isoformat()} (earliest start "
        f"{earliest.isoformat()}); AWS would refuse it. The earliest as-of for this look-back is "
        f"{earliest_as_of.isoformat()}, or use fewer look-back months"
    )


def previous_review(as_of: date, review_days: Iterable[str | int]) -> date:
    """The last review day strictly before ``as_of`` (Friday for a Monday review, Monday for a Friday one)."""
    weekdays = {_weekday(day) for day in review_days}
    if not weekdays:
        return as_of - timedelta(days=7)
    for offset in range(1, 8):
        candidate = as_of - timedelta(days=offset)
        if candidate.weekday() in weekdays:
            return candidate
    return as_of - timedelta(days=7)  # unreachable: some weekday matches within a week


def _weekday(value: str | int) -> int:
    if isinstance(value, int) and 0 <= value <= 6:
        return value
    name = str(value).strip().lower()[:3]
    for index, day in enumerate(WEEKDAYS):
        if day.startswith(name) and len(name) == 3:
            return index
    raise CostReviewError(f"unknown weekday {value!r}")
