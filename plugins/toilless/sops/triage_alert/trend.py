"""Triage alert: "has it been rising for a long time, since when", from a range query. Pure (no Airflow import).

The series is walked back from its newest point while it keeps going down into the past (each earlier point no
higher than the lowest seen so far plus one step's worth of the rising rate, so jitter does not end the walk). The
lowest point reached is where the rise started. It is a **steady rise** when it lasted at least
``steady_for_minutes``, gained at least ``rising_per_hour_at_least`` per hour on average, and no single step carries
most of it. A rise that is mostly one step is **one jump** (a blip, a restart, a cache warming): flat, not rising.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

RISING = "rising"
FLAT = "flat"
UNKNOWN = "unknown"
#: A rise in which one step carries more than this share is one jump, not a steady rise.
MAX_JUMP_SHARE = 0.5


@dataclass(frozen=True)
class Trend:
    state: str
    summary: str
    since: float | None = None
    duration_seconds: float = 0.0
    rate_per_hour: float = 0.0
    points: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours < 48 else f"{hours // 24}d {hours % 24}h"


def amount(value: float, unit: str = "") -> str:
    """``value`` for a person: bytes in binary units, anything else with four significant digits."""
    if unit == "bytes":
        size = abs(value)
        for suffix, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
            if size >= scale:
                return f"{value / scale:.1f} {suffix}"
        return f"{value:.0f} B"
    return f"{value:.4g}"


def summed(series: Sequence[Sequence[tuple[float, float]]]) -> list[tuple[float, float]]:
    """One series from several (summed per timestamp): a trend is about the total, e.g. all pods' memory."""
    totals: dict[float, float] = {}
    for points in series:
        for stamp, value in points:
            totals[float(stamp)] = totals.get(float(stamp), 0.0) + float(value)
    return sorted(totals.items())


def analyse(
    points: Sequence[tuple[float, float]],
    *,
    rising_per_hour_at_least: float,
    steady_for_minutes: float,
    step_seconds: float,
    unit: str = "",
) -> Trend:
    """Rising, flat or unknown, with since when and how fast (see the module docstring)."""
    clean = [(float(t), float(v)) for t, v in points if math.isfinite(float(v)) and math.isfinite(float(t))]
    clean.sort()
    if len(clean) < 2:
        return Trend(UNKNOWN, f"trend: not enough data ({len(clean)} point(s) in the range)", points=len(clean))
    tolerance = rising_per_hour_at_least * step_seconds / 3600
    newest_time, newest = clean[-1]
    low, start = newest, len(clean) - 1
    for index in range(len(clean) - 2, -1, -1):
        value = clean[index][1]
        if value > low + tolerance:
            break
        if value < low:
            low, start = value, index
    since, rise = clean[start][0], newest - low
    lasted = newest_time - since
    rate = rise / (lasted / 3600) if lasted > 0 else 0.0
    steps = [clean[i + 1][1] - clean[i][1] for i in range(start, len(clean) - 1)]
    biggest = max(steps, default=0.0)
    whole = " (all of the range read)" if start == 0 else ""
    common = {"since": since, "duration_seconds": lasted, "rate_per_hour": rate, "points": len(clean)}
    if rise > 0 and len(steps) > 1 and biggest > MAX_JUMP_SHARE * rise:
        jump_at = clean[start + steps.index(biggest) + 1][0]
        return Trend(
            FLAT,
            f"one jump of +{amount(biggest, unit)} at {when(jump_at)}, otherwise flat: not a steady rise",
            **common,
        )
    rising = f"rising since {when(since)}{whole} ({duration(lasted)}), +{amount(rate, unit)}/h"
    if rate >= rising_per_hour_at_least and lasted >= steady_for_minutes * 60:
        return Trend(RISING, rising, **common)
    if rise > 0 and rate >= rising_per_hour_at_least:
        return Trend(FLAT, f"{rising}: shorter than the {steady_for_minutes:g} min of a steady rise", **common)
    return Trend(
        FLAT,
        f"flat: {amount(newest, unit)} now, +{amount(max(rate, 0.0), unit)}/h since {when(since)} "
        f"(a rise is at least +{amount(rising_per_hour_at_least, unit)}/h)",
        **common,
    )
