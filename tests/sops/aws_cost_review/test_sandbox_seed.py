"""The aws_cost_review sandbox seeder: which as-of dates it prepares Cost Explorer data for, and in which order."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from sandbox.aws_cost_review_data import AS_OF, cost_pages
from sandbox.services.aws_cost_review import DAYS_COVERED, expected_as_of_dates

SCHEDULE = {"cron": "0 7 * * 1,5", "timezone": "Europe/Berlin"}


@pytest.mark.parametrize(
    ("now", "first", "second"),
    [
        pytest.param(datetime(2026, 11, 22, 3, 40, tzinfo=UTC), date(2026, 11, 20), date(2026, 11, 22), id="sunday"),
        pytest.param(
            datetime(2026, 11, 23, 6, 30, tzinfo=UTC), date(2026, 11, 23), date(2026, 11, 24), id="monday after 07:00"
        ),
        pytest.param(
            datetime(2026, 11, 23, 5, 30, tzinfo=UTC), date(2026, 11, 20), date(2026, 11, 23), id="monday before 07:00"
        ),
    ],
)
def test_the_unpause_run_comes_first_then_today(now: datetime, first: date, second: date) -> None:
    dates = expected_as_of_dates(SCHEDULE, now)
    assert dates[:2] == [first, second]
    assert len(dates) == len(set(dates)) >= DAYS_COVERED


def test_cost_pages_answer_every_metric_in_two_linked_pages() -> None:
    first, second = cost_pages(AS_OF, metrics=("UnblendedCost", "AmortizedCost"))
    assert first["NextPageToken"] == "services-2"
    assert "NextPageToken" not in second
    group = first["ResultsByTime"][0]["Groups"][0]
    assert set(group["Metrics"]) == {"UnblendedCost", "AmortizedCost"}
    assert [period["Estimated"] for period in first["ResultsByTime"]] == [False, False, False, True]
