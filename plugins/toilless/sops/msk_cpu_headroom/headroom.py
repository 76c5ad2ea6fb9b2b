"""Per-broker CPU headroom and its shape over two windows: the last hour and the last 7 days. Pure.

``used`` is CpuUser + CpuSystem in percent (what MSK's best practice counts); headroom is ``100 - used``.

State (on the last hour's mean):
* **urgent**: used above ``urgent_used_pct`` (80): the real concern;
* **warning**: headroom below ``warning_headroom_pct`` (40): MSK's best-practice warning;
* **ok** otherwise; **no_data** when the last hour has no data point.

Shape (the documented rule on the two windows; the 7-day window's points before the last hour are the history):
* **spike**: the last hour's mean is at least ``spike_min_rise_pct`` points above the history's median (a load that
  was not there yesterday);
* **steady_rise**: otherwise, the least-squares slope of the history is at least ``steady_min_slope_pct_per_day``
  and it rose at least ``steady_min_rise_pct`` points over the window (the cluster needs to grow);
* **sustained**: neither (the level has been about this high all week: the cluster needs to grow as well);
* **unknown**: fewer than ``min_history_points`` history points (a new cluster or metrics just enabled): treated
  like a spike for routing (ask, do not resize on a guess).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from toilless.common.config import ConfigError, number_setting

OK, WARNING, URGENT, NO_DATA = "ok", "warning", "urgent", "no_data"
SPIKE, STEADY_RISE, SUSTAINED, UNKNOWN = "spike", "steady_rise", "sustained", "unknown"
_STATE_ORDER = {NO_DATA: 0, OK: 1, WARNING: 2, URGENT: 3}
DAY = 86_400.0
HOUR = 3_600.0


@dataclass(frozen=True)
class HeadroomRules:
    warning_headroom_pct: float = 40.0
    urgent_used_pct: float = 80.0
    spike_min_rise_pct: float = 20.0
    steady_min_slope_pct_per_day: float = 1.5
    steady_min_rise_pct: float = 8.0
    min_history_points: int = 24

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> HeadroomRules:
        where = "msk_cpu_headroom rules"
        pct = {"minimum": 0, "maximum": 100}
        try:
            return cls(
                warning_headroom_pct=number_setting(
                    config["warning_headroom_pct"], f"{where}.warning_headroom_pct", **pct
                ),
                urgent_used_pct=number_setting(config["urgent_used_pct"], f"{where}.urgent_used_pct", **pct),
                spike_min_rise_pct=number_setting(config["spike_min_rise_pct"], f"{where}.spike_min_rise_pct", above=0),
                steady_min_slope_pct_per_day=number_setting(
                    config["steady_min_slope_pct_per_day"], f"{where}.steady_min_slope_pct_per_day", above=0
                ),
                steady_min_rise_pct=number_setting(
                    config["steady_min_rise_pct"], f"{where}.steady_min_rise_pct", above=0
                ),
                min_history_points=int(
                    number_setting(config["min_history_points"], f"{where}.min_history_points", minimum=2, whole=True)
                ),
            )
        except KeyError as err:
            raise ConfigError(f"{where}: missing setting {err.args[0]!r}") from err


@dataclass(frozen=True)
class BrokerHeadroom:
    broker_id: str
    state: str
    shape: str
    hour_used_pct: float | None
    hour_peak_pct: float | None
    history_median_pct: float | None
    slope_pct_per_day: float | None
    history_points: int

    @property
    def headroom_pct(self) -> float | None:
        return None if self.hour_used_pct is None else 100.0 - self.hour_used_pct

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "headroom_pct": self.headroom_pct}


def broker_headroom(
    broker_id: str,
    hour: Sequence[tuple[float, float]],
    week: Sequence[tuple[float, float]],
    *,
    now: float,
    rules: HeadroomRules,
) -> BrokerHeadroom:
    """One broker: ``hour`` and ``week`` are ``[(epoch seconds, used %)]`` (any order)."""
    hour_values = [value for _, value in hour]
    history = sorted((stamp, value) for stamp, value in week if stamp < now - HOUR)
    hour_used = statistics.fmean(hour_values) if hour_values else None
    median = statistics.median(v for _, v in history) if history else None
    slope = least_squares_slope(history) * DAY if len(history) >= 2 else None
    if hour_used is None:
        state = NO_DATA
    elif hour_used > rules.urgent_used_pct:
        state = URGENT
    elif 100.0 - hour_used < rules.warning_headroom_pct:
        state = WARNING
    else:
        state = OK
    return BrokerHeadroom(
        broker_id=broker_id,
        state=state,
        shape=_shape(hour_used, history, median, slope, rules),
        hour_used_pct=_round(hour_used),
        hour_peak_pct=_round(max(hour_values)) if hour_values else None,
        history_median_pct=_round(median),
        slope_pct_per_day=_round(slope),
        history_points=len(history),
    )


def _shape(
    hour_used: float | None,
    history: Sequence[tuple[float, float]],
    median: float | None,
    slope: float | None,
    rules: HeadroomRules,
) -> str:
    if hour_used is None or median is None or slope is None or len(history) < rules.min_history_points:
        return UNKNOWN
    if hour_used - median >= rules.spike_min_rise_pct:
        return SPIKE
    span_days = (history[-1][0] - history[0][0]) / DAY
    if slope >= rules.steady_min_slope_pct_per_day and slope * span_days >= rules.steady_min_rise_pct:
        return STEADY_RISE
    return SUSTAINED


def least_squares_slope(points: Sequence[tuple[float, float]]) -> float:
    """Slope of the least-squares line through ``(x, y)`` points (y units per x unit); 0 for a vertical spread."""
    count = len(points)
    mean_x = sum(x for x, _ in points) / count
    mean_y = sum(y for _, y in points) / count
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def worst_state(states: Iterable[str]) -> str:
    return max(states, key=lambda state: _STATE_ORDER[state], default=NO_DATA)


def cluster_shape(brokers: Sequence[BrokerHeadroom]) -> str:
    """The cluster's shape from the brokers short of headroom (all brokers if none is): a spike on any of them is
    a spike (someone's load); else a steady rise on any; else unknown if any is unknown; else sustained."""
    short = [b for b in brokers if b.state in (WARNING, URGENT)] or list(brokers)
    shapes = {b.shape for b in short}
    for shape in (SPIKE, STEADY_RISE, UNKNOWN):
        if shape in shapes:
            return shape
    return SUSTAINED if shapes else UNKNOWN


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
