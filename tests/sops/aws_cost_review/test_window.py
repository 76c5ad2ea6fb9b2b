"""The review period: which month, how much of it, which baseline months, the previous review day."""

from __future__ import annotations

from datetime import date

import pytest

from tests.sops.aws_cost_review.cases import AUG, NOV, OCT, SEP
from toilless.sops.aws_cost_review import errors as cost_errors
from toilless.sops.aws_cost_review import window as review_period


@pytest.mark.parametrize(
    ("as_of", "month", "elapsed", "days", "baseline"),
    [
        pytest.param(date(2026, 11, 22), NOV, 21, 30, (AUG, SEP, OCT), id="mid-month: data through yesterday"),
        pytest.param(date(2026, 12, 1), NOV, 30, 30, (AUG, SEP, OCT), id="first of month reviews the full month"),
        pytest.param(
            date(2026, 1, 1),
            date(2025, 12, 1),
            31,
            31,
            (date(2025, 9, 1), date(2025, 10, 1), date(2025, 11, 1)),
            id="new year crosses the year boundary",
        ),
        pytest.param(
            date(2024, 3, 1),
            date(2024, 2, 1),
            29,
            29,
            (date(2023, 11, 1), date(2023, 12, 1), date(2024, 1, 1)),
            id="leap February",
        ),
    ],
)
def test_review_window(as_of: date, month: date, elapsed: int, days: int, baseline: tuple[date, ...]) -> None:
    window = review_period.review_window(as_of, 3)
    assert (window.review_month, window.days_elapsed, window.days_in_month) == (month, elapsed, days)
    assert window.baseline_months == baseline
    assert window.query_start == baseline[0]
    assert window.query_end == as_of
    assert review_period.ReviewWindow.from_dict(window.as_dict()) == window


@pytest.mark.parametrize("lookback", [pytest.param(0, id="zero"), pytest.param(13, id="over a year")])
def test_review_window_rejects_bad_lookback(lookback: int) -> None:
    with pytest.raises(cost_errors.CostReviewError, match="look-back"):
        review_period.review_window(date(2026, 11, 22), lookback)


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        pytest.param(date(2026, 11, 23), date(2026, 11, 20), id="monday review looks back to friday"),
        pytest.param(date(2026, 11, 27), date(2026, 11, 23), id="friday review looks back to monday"),
        pytest.param(date(2026, 11, 25), date(2026, 11, 23), id="manual wednesday run looks back to monday"),
    ],
)
def test_previous_review(as_of: date, expected: date) -> None:
    assert review_period.previous_review(as_of, ["monday", "friday"]) == expected


def test_parse_as_of() -> None:
    assert review_period.parse_as_of(None, date(2026, 1, 2)) == date(2026, 1, 2)
    assert review_period.parse_as_of("2026-11-20", date(2026, 12, 2)) == date(2026, 11, 20)
    assert review_period.parse_as_of("2026-12-02", date(2026, 12, 2)) == date(2026, 12, 2)
    with pytest.raises(cost_errors.CostReviewError, match="not a date"):
        review_period.parse_as_of("20/11/2026", date(2026, 1, 2))


@pytest.mark.parametrize(
    "as_of", [pytest.param("2026-12-03", id="tomorrow"), pytest.param(date(2027, 6, 1), id="next-year-as-date")]
)
def test_as_of_in_the_future_is_refused(as_of: str | date) -> None:
    """#9: Cost Explorer has nothing for the future; the review would post an all-clear."""
    from toilless.common.errors import InvalidInput

    with pytest.raises(InvalidInput, match="in the future"):
        review_period.parse_as_of(as_of, date(2026, 12, 2))
