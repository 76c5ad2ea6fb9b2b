"""Time-based policies: maintenance windows and business hours. Pure, timezone-aware, no Airflow import.

A window is a set of weekdays and a local start/end time in an IANA timezone. ``end`` earlier than ``start`` means the
window runs past midnight into the next day (e.g. 22:00-02:00).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from toilless.common.errors import InvalidInput

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class PolicyError(InvalidInput):
    """A policy setting is malformed (invalid input: never retried)."""


@dataclass(frozen=True)
class WeeklyWindow:
    """Recurring weekly window, e.g. Sunday 02:00-04:00 UTC."""

    days: frozenset[int]  # 0 = Monday, as datetime.weekday()
    start: time
    end: time
    timezone: str = "UTC"

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> WeeklyWindow:
        """Build from ``{"days": [...], "start": "HH:MM", "end": "HH:MM", "timezone": "..."}``."""
        try:
            days = frozenset(_weekday(day) for day in config["days"])
            start = _clock(config["start"])
            end = _clock(config["end"])
        except KeyError as err:
            raise PolicyError(f"window setting is missing {err.args[0]!r}: {config!r}") from err
        timezone = str(config.get("timezone", "UTC"))
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise PolicyError(f"unknown timezone {timezone!r}") from err
        if not days:
            raise PolicyError("a window needs at least one day")
        if start == end:
            raise PolicyError(f"window start and end are both {start}: empty window")
        return cls(days=days, start=start, end=end, timezone=timezone)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def contains(self, moment: datetime) -> bool:
        """True if ``moment`` (timezone-aware) falls inside the window."""
        local = _aware(moment).astimezone(self.zone)
        clock = local.time().replace(tzinfo=None)
        if self.start < self.end:
            return local.weekday() in self.days and self.start <= clock < self.end
        # Overnight window: the part after midnight belongs to the day the window started.
        if clock >= self.start:
            return local.weekday() in self.days
        if clock < self.end:
            return (local.weekday() - 1) % 7 in self.days
        return False

    def next_start(self, moment: datetime) -> datetime:
        """The next moment at or after ``moment`` when the window opens (or ``moment`` if inside)."""
        if self.contains(moment):
            return _aware(moment)
        local = _aware(moment).astimezone(self.zone)
        for offset in range(8):
            day = (local + timedelta(days=offset)).date()
            if day.weekday() not in self.days:
                continue
            opening = datetime.combine(day, self.start, tzinfo=self.zone)
            if opening >= local:
                return opening.astimezone(_aware(moment).tzinfo)
        raise PolicyError("window never opens")  # unreachable for a non-empty window

    def next_end(self, moment: datetime) -> datetime:
        """The moment the window that contains ``moment`` closes (``moment`` itself if outside)."""
        if not self.contains(moment):
            return _aware(moment)
        # Walk forward in minutes is simple and exact enough for windows of hours; bounded to a week.
        probe = _aware(moment).replace(second=0, microsecond=0)
        for _ in range(7 * 24 * 60):
            probe += timedelta(minutes=1)
            if not self.contains(probe):
                return probe
        raise PolicyError("window never closes")

    def describe(self) -> str:
        days = ", ".join(WEEKDAYS[day].capitalize() for day in sorted(self.days))
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M} {self.timezone}"


@dataclass(frozen=True)
class ActionVerdict:
    """Whether an automated action may run now, and if not, why and when it may."""

    allowed: bool
    reason: str
    allowed_from: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "reason": self.reason,
            "allowed_from": self.allowed_from.isoformat() if self.allowed_from else None,
        }


def window_from_config(spec: dict[str, Any] | None) -> WeeklyWindow | None:
    """The window a setting describes, or None when it is unset (null or empty)."""
    return WeeklyWindow.from_config(spec) if spec else None


def action_allowed(
    moment: datetime,
    *,
    business_hours: WeeklyWindow | Sequence[WeeklyWindow] | None,
    maintenance_window: WeeklyWindow | None,
) -> ActionVerdict:
    """May an automated action (restart, failover) run at ``moment``?

    Allowed inside business hours (when set; with several windows, inside every one of them: a run's narrower
    hours apply on top of the configured ones) and outside the maintenance window (when set). When not allowed,
    says the earliest moment both conditions hold.
    """
    moment = _aware(moment)
    hours = _as_windows(business_hours)
    outside_hours = next((window for window in hours if not window.contains(moment)), None)
    in_maintenance = maintenance_window is not None and maintenance_window.contains(moment)
    if outside_hours is None and not in_maintenance:
        return ActionVerdict(True, "inside business hours and outside the maintenance window")
    reason = (
        f"inside the maintenance window ({maintenance_window.describe()})"
        if in_maintenance and maintenance_window is not None
        else f"outside business hours ({outside_hours.describe()})"
        if outside_hours is not None
        else "not allowed"
    )
    return ActionVerdict(False, reason, next_allowed(moment, hours, maintenance_window))


def next_allowed(
    moment: datetime,
    business_hours: WeeklyWindow | Sequence[WeeklyWindow] | None,
    maintenance_window: WeeklyWindow | None,
    *,
    inclusive: bool = False,
) -> datetime | None:
    """The first minute after ``moment`` (or at it, if ``inclusive``) inside every business-hours window and outside
    the maintenance window; None if there is none within two weeks (windows that never overlap)."""
    hours = _as_windows(business_hours)
    probe = _aware(moment)
    if not inclusive or probe.second or probe.microsecond:
        probe = probe.replace(second=0, microsecond=0) + timedelta(minutes=1)
    # Jump window edges rather than scanning minutes where possible; two weeks bounds any weekly pair.
    for _ in range(2 * 7 * 24 * 4):
        closed = next((window for window in hours if not window.contains(probe)), None)
        if closed is not None:
            probe = closed.next_start(probe)
            continue
        if maintenance_window is not None and maintenance_window.contains(probe):
            probe = maintenance_window.next_end(probe)
            continue
        return probe
    return None


def window_is_within(inner: WeeklyWindow, outer: WeeklyWindow, *, start: datetime, days: int = 7) -> bool:
    """True if every minute of ``inner`` in the ``days`` after ``start`` also lies in ``outer``.

    Minute resolution matches the windows' HH:MM edges; a week covers a weekly pattern (timezones that change
    their offset in that week are checked as they are in that week).
    """
    probe = _aware(start).astimezone(UTC).replace(second=0, microsecond=0)
    for _ in range(days * 24 * 60):
        if inner.contains(probe) and not outer.contains(probe):
            return False
        probe += timedelta(minutes=1)
    return True


def _as_windows(business_hours: WeeklyWindow | Sequence[WeeklyWindow] | None) -> tuple[WeeklyWindow, ...]:
    if business_hours is None:
        return ()
    if isinstance(business_hours, WeeklyWindow):
        return (business_hours,)
    return tuple(business_hours)


def _weekday(value: str | int) -> int:
    if isinstance(value, int) and 0 <= value <= 6:
        return value
    name = str(value).strip().lower()
    for index, day in enumerate(WEEKDAYS):
        if day.startswith(name[:3]) and len(name) >= 3:
            return index
    raise PolicyError(f"unknown weekday {value!r}")


def _clock(value: str | time) -> time:
    if isinstance(value, time):
        return value
    try:
        hours, minutes = str(value).split(":")
        return time(int(hours), int(minutes))
    except ValueError as err:
        raise PolicyError(f"time {value!r} is not HH:MM") from err


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise PolicyError("policy checks need a timezone-aware datetime")
    return moment
