"""Where a webhook answer's time goes, measured in the API server while it serves (issue 12, the storm's p99).

The app times each stage of a delivery with ``time.perf_counter`` (settings and auth, receiving the body, parsing,
the payload model, waiting for a slot, waiting for a thread, the plan (routes and Params), the inbox insert (on
SQLite the spool's), serialising the answer) and a watcher measures how late the event loop wakes from a short sleep: a late wake-up is
time every request in the process waited, for the GIL or for a CPU, whatever held it. One INFO line per
``REPORT_SECONDS`` summarises both (percentiles per stage), only while deliveries arrive, so an idle ``make run``
logs nothing. A few list appends per delivery: cheap enough to stay on.

Pure: no Airflow, no FastAPI. Not thread-safe on purpose: the app records from its event loop only (the stages
measured in the intake's threads travel back with the answer).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

#: How often the summary is logged while deliveries arrive (seconds).
REPORT_SECONDS = 30.0
#: The event-loop watcher's sleep; its lateness is the loop's lag. Ten wake-ups a second, for ever, in the API
#: server: fine enough for the stalls that matter (hundreds of milliseconds to seconds), cheap when idle.
LAG_PERIOD_SECONDS = 0.1
#: Samples kept per stage between two reports (a storm sends about 200 deliveries a minute; lag is 10 a second).
MAX_SAMPLES = 10_000


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` 0.5 = median) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(len(ordered) * fraction + 0.999999)))
    return ordered[rank - 1]


class WebhookTimings:
    """Stage durations of the deliveries answered since the last report, and the event loop's lag."""

    def __init__(self, *, report_seconds: float = REPORT_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.report_seconds = report_seconds
        self.clock = clock
        self.stages: dict[str, list[float]] = {}
        self.lags: list[float] = []
        self.deliveries = 0
        self.since = clock()

    def record(self, stages: Mapping[str, float]) -> None:
        """One answered delivery's stages, in seconds (``total`` included by the caller)."""
        self.deliveries += 1
        for name, seconds in stages.items():
            samples = self.stages.setdefault(name, [])
            if len(samples) < MAX_SAMPLES:
                samples.append(seconds)

    def record_lag(self, seconds: float) -> None:
        if len(self.lags) < MAX_SAMPLES:
            self.lags.append(max(0.0, seconds))

    def summary(self) -> dict[str, dict[str, float]]:
        """Per stage (and ``loop_lag``): count, p50, p90, p99 and max in milliseconds."""
        found: dict[str, dict[str, float]] = {}
        for name, samples in [*self.stages.items(), ("loop_lag", self.lags)]:
            if samples:
                found[name] = {
                    "count": float(len(samples)),
                    "p50": percentile(samples, 0.5) * 1000,
                    "p90": percentile(samples, 0.9) * 1000,
                    "p99": percentile(samples, 0.99) * 1000,
                    "max": max(samples) * 1000,
                }
        return found

    def report(self) -> str | None:
        """The summary line if a report is due and deliveries were answered since the last one (then reset)."""
        now = self.clock()
        if now - self.since < self.report_seconds:
            return None
        line = None
        if self.deliveries:
            parts = [
                f"{name} {s['p50']:.1f}/{s['p90']:.1f}/{s['p99']:.1f}/{s['max']:.1f}"
                for name, s in self.summary().items()
            ]
            line = (
                f"pid {os.getpid()}: {self.deliveries} deliveries in {now - self.since:.0f} s; ms p50/p90/p99/max: "
                + ", ".join(parts)
            )
        self.stages, self.lags, self.deliveries, self.since = {}, [], 0, now
        return line


async def watch_loop_lag(timings: WebhookTimings, period: float = LAG_PERIOD_SECONDS) -> None:
    """Sleep ``period`` again and again; record how late each wake-up is; log the summary when one is due."""
    while True:
        began = time.perf_counter()
        await asyncio.sleep(period)
        timings.record_lag(time.perf_counter() - began - period)
        line = timings.report()
        if line:
            log.info("Alert intake webhook timings: %s", line)
