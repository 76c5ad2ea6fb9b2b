"""The webhook's stage timings and the event loop's lag (issue 12: where a storm answer's time goes)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.fixtures.alert_intake import IntakeHarness, make_alert, make_payload
from toilless.intake.timings import WebhookTimings, percentile, watch_loop_lag


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        pytest.param([5.0], 0.99, 5.0, id="one-value"),
        pytest.param([float(n) for n in range(1, 101)], 0.5, 50.0, id="median-of-100"),
        pytest.param([float(n) for n in range(1, 101)], 0.99, 99.0, id="p99-of-100"),
        pytest.param([float(n) for n in range(100, 0, -1)], 0.9, 90.0, id="unsorted-input"),
        pytest.param([1.0, 2.0], 1.0, 2.0, id="max"),
    ],
)
def test_percentile_is_the_nearest_rank(values: list[float], fraction: float, expected: float) -> None:
    assert percentile(values, fraction) == expected


def test_summary_gives_each_stage_and_the_loop_lag_in_milliseconds() -> None:
    timings = WebhookTimings(clock=_Clock())
    for n in range(1, 101):
        timings.record({"parse": n / 1000, "total": n / 100})
    timings.record_lag(0.002)

    summary = timings.summary()

    assert summary["parse"] == {"count": 100.0, "p50": 50.0, "p90": 90.0, "p99": 99.0, "max": 100.0}
    assert summary["total"]["p99"] == pytest.approx(990.0)
    assert summary["loop_lag"]["max"] == pytest.approx(2.0)


def test_report_waits_for_its_interval_then_resets() -> None:
    clock = _Clock()
    timings = WebhookTimings(report_seconds=30, clock=clock)
    timings.record({"total": 0.1})
    clock.now += 29

    assert timings.report() is None  # not due yet: nothing reset
    clock.now += 1
    line = timings.report()

    assert line is not None
    assert "1 deliveries in 30 s" in line
    assert "total 100.0/100.0/100.0/100.0" in line
    assert timings.summary() == {}
    assert timings.deliveries == 0


def test_no_report_without_deliveries_so_an_idle_server_logs_nothing() -> None:
    clock = _Clock()
    timings = WebhookTimings(report_seconds=30, clock=clock)
    timings.record_lag(0.5)
    clock.now += 60

    assert timings.report() is None
    assert timings.lags == []  # the idle interval's lag does not leak into the next report


def test_samples_are_bounded() -> None:
    timings = WebhookTimings(clock=_Clock())
    for _ in range(20_000):
        timings.record({"total": 0.001})
        timings.record_lag(0.001)

    assert timings.deliveries == 20_000
    assert len(timings.stages["total"]) == 10_000
    assert len(timings.lags) == 10_000


def test_loop_lag_watcher_measures_a_blocked_loop_and_logs_the_summary(caplog: pytest.LogCaptureFixture) -> None:
    import time

    timings = WebhookTimings(report_seconds=0.05)

    async def scenario() -> None:
        watcher = asyncio.create_task(watch_loop_lag(timings, period=0.005))
        await asyncio.sleep(0.02)
        timings.record({"total": 0.01})
        time.sleep(0.1)  # something holds the loop: the watcher wakes about 100 ms late
        await asyncio.sleep(0.02)
        watcher.cancel()

    with caplog.at_level(logging.INFO, logger="toilless.intake.timings"):
        asyncio.run(scenario())

    assert "Alert intake webhook timings" in caplog.text
    assert "loop_lag" in caplog.text
    line = next(r.getMessage() for r in caplog.records if "loop_lag" in r.getMessage())
    worst = float(line.split("loop_lag ")[1].split("/")[3])
    assert worst >= 80.0, line


@pytest.mark.integration
def test_the_app_times_every_stage_of_an_accepted_delivery_and_not_of_a_refused_one(intake: IntakeHarness) -> None:
    timings = intake.client.app.state.timings
    alert = make_alert(instance="db-1", environment="prod", severity="critical", service="orders")

    refused = intake.post(b'{"version": "4", "alerts": [')
    accepted = intake.post(make_payload(alert))

    assert refused.status_code == 400
    assert accepted.status_code == 200, accepted.text
    assert timings.deliveries == 1
    stages = {name: samples[0] for name, samples in timings.stages.items()}
    assert set(stages) == {
        "auth", "receive", "parse", "model", "slot", "thread", "plan", "insert", "back", "serialise", "total"
    }  # fmt: skip
    assert all(seconds >= 0 for seconds in stages.values()), stages
    assert stages["total"] >= sum(seconds for name, seconds in stages.items() if name != "total")
