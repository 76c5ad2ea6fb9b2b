"""Triage alert: "has it been rising for a long time, since when" (pure), on series built relative to a moment."""

from __future__ import annotations

import time

import pytest

from toilless.sops.triage_alert.trend import FLAT, RISING, UNKNOWN, analyse, duration, summed, when

MIB = 1 << 20
STEP = 300  # five minutes
NOW = time.time()


def series(values: list[float]) -> list[tuple[float, float]]:
    """``values`` one STEP apart, the last one now."""
    return [(NOW - (len(values) - 1 - index) * STEP, value) for index, value in enumerate(values)]


FLAT_72 = [500.0 * MIB] * 72  # six hours
#: Flat for four hours, then +4 MiB every five minutes for two hours (48 MiB/h).
LEAK = [500.0 * MIB] * 48 + [500.0 * MIB + 4 * MIB * (i + 1) for i in range(24)]
#: The same leak with +-1 MiB jitter on every point.
JITTERY_LEAK = [value + (MIB if index % 2 else -MIB) for index, value in enumerate(LEAK)]
#: Flat, one spike of +300 MiB an hour ago, back to flat.
BLIP = [500.0 * MIB] * 60 + [800.0 * MIB] + [500.0 * MIB] * 11
#: Flat, then one jump of +200 MiB half an hour ago that stayed (a cache warming).
JUMP = [500.0 * MIB] * 66 + [700.0 * MIB] * 6
#: A steady rise for only 40 minutes.
SHORT = [500.0 * MIB] * 64 + [500.0 * MIB + 4 * MIB * (i + 1) for i in range(8)]


@pytest.mark.parametrize(
    ("values", "state", "since_steps_ago", "text"),
    [
        pytest.param(LEAK, RISING, 24, "rising since", id="steady-leak"),
        pytest.param(JITTERY_LEAK, RISING, 24, "rising since", id="leak-with-jitter"),
        pytest.param(FLAT_72, FLAT, 0, "flat: 500.0 MiB now", id="flat"),
        pytest.param(BLIP, FLAT, None, "flat", id="flat-with-one-blip"),
        pytest.param(JUMP, FLAT, None, "one jump of +200.0 MiB", id="one-jump-that-stayed"),
        pytest.param(SHORT, FLAT, 8, "shorter than the 120 min of a steady rise", id="rise-too-short"),
        pytest.param([700.0 * MIB], UNKNOWN, None, "not enough data", id="one-point"),
        pytest.param([], UNKNOWN, None, "not enough data", id="no-data"),
    ],
)
def test_trend(values: list[float], state: str, since_steps_ago: int | None, text: str) -> None:
    found = analyse(
        series(values), rising_per_hour_at_least=10 * MIB, steady_for_minutes=120, step_seconds=STEP, unit="bytes"
    )
    assert found.state == state
    assert text in found.summary
    if since_steps_ago is not None:
        assert found.since == pytest.approx(NOW - since_steps_ago * STEP)


def test_a_steady_rise_says_since_when_for_how_long_and_how_fast() -> None:
    found = analyse(
        series(LEAK), rising_per_hour_at_least=10 * MIB, steady_for_minutes=120, step_seconds=STEP, unit="bytes"
    )
    assert found.summary == f"rising since {when(NOW - 24 * STEP)} (2h 00m), +48.0 MiB/h"
    assert found.rate_per_hour == pytest.approx(48 * MIB)


def test_a_rise_over_the_whole_range_says_so() -> None:
    values = [100.0 + index for index in range(30)]
    found = analyse(series(values), rising_per_hour_at_least=1, steady_for_minutes=60, step_seconds=STEP)
    assert found.state == RISING
    assert "(all of the range read)" in found.summary
    assert "+12/h" in found.summary


def test_nan_and_inf_points_are_left_out() -> None:
    points = series([1.0, float("nan"), 2.0, float("inf"), 3.0])
    found = analyse(points, rising_per_hour_at_least=1, steady_for_minutes=1, step_seconds=STEP)
    assert found.points == 3


def test_series_are_summed_per_timestamp() -> None:
    assert summed([[(1.0, 2.0), (2.0, 3.0)], [(1.0, 5.0)]]) == [(1.0, 7.0), (2.0, 3.0)]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(59 * 60, "59m", id="minutes"),
        pytest.param(2 * 3600 + 5 * 60, "2h 05m", id="hours"),
        pytest.param(3 * 86400 + 3600, "3d 1h", id="days"),
    ],
)
def test_durations_read_like_a_person_writes_them(seconds: float, text: str) -> None:
    assert duration(seconds) == text
