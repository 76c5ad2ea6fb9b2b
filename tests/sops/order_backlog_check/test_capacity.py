"""The processor's capacity per run and the suggested run frequency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from toilless.common.config import read_defaults
from toilless.sops.order_backlog_check.capacity import Capacity, assess_capacity
from toilless.sops.order_backlog_check.log_parsing import (
    RunSummary,
)


# -- capacity --------------------------------------------------------------------------------------------------
def test_capacity_from_the_sop_defaults() -> None:
    capacity = Capacity.from_config(read_defaults("order_backlog_check")["processor"])
    assert capacity.slots == 8
    assert capacity.per_run(15) == 1920
    assert capacity.per_run(10) == 2880


@pytest.mark.parametrize(
    ("outstanding", "over", "runs", "interval", "processes"),
    [
        pytest.param(1000, False, 1, 60, 2, id="within"),
        pytest.param(5000, True, 3, 20, 6, id="three-runs"),
        pytest.param(100_000, True, 53, 5, 105, id="floor-at-min-interval"),
    ],
)
def test_capacity_suggestion(outstanding: int, over: bool, runs: int, interval: int, processes: int) -> None:
    assessment = assess_capacity(Capacity(), outstanding, None)
    assert assessment.seconds_per_order_source == "configured (worst case)"
    assert assessment.capacity_per_run == 1920
    assert (assessment.over_capacity, assessment.runs_needed) == (over, runs)
    assert assessment.suggested_interval_minutes == interval
    assert assessment.suggested_processes == processes


def test_observed_pace_is_used_but_not_below_best_case() -> None:
    start = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    summary = RunSummary(
        found_startup=True,
        orders_processed=80,
        first_processing_at=start,
        last_processed_at=start + timedelta(seconds=200),  # 80 orders in 200 s on 8 slots = 20 s/order
    )
    assessment = assess_capacity(Capacity(), 100, summary)
    assert assessment.seconds_per_order_source == "observed"
    assert assessment.seconds_per_order == 20
    fast = RunSummary(found_startup=True, orders_processed=80, first_processing_at=start, last_processed_at=start)
    assert assess_capacity(Capacity(), 100, fast).seconds_per_order == 15  # no elapsed time: configured


@pytest.mark.parametrize(
    "config",
    [
        pytest.param({"processes": 0}, id="no-processes"),
        pytest.param({"seconds_per_order_min": 20}, id="min-above-max"),
        pytest.param({"run_interval_minutes": "1; DROP TABLE orders"}, id="sql-text"),
    ],
)
def test_bad_capacity_settings_are_refused(config: dict[str, object]) -> None:
    base = read_defaults("order_backlog_check")["processor"]
    with pytest.raises(ValueError):
        Capacity.from_config({**base, **config})
