"""Time-based policies: maintenance windows and business hours. Pure, timezone-aware, no Airflow import.

A window is a set of weekdays and a local start/end time in an IANA timezone. ``end`` earlier than ``start`` means the
window runs past midnight into the next day (e.g. 22:00-02:00).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
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


def action_allowed(
    moment: datetime,
    *,
    business_hours: WeeklyWindow | None,
    maintenance_window: WeeklyWindow | None,
) -> ActionVerdict:
    """May an automated action (restart, failover) run at ``moment``?

    Allowed inside business hours (when set) and outside the maintenance window (when set). When not allowed, says
    the earliest moment both conditions hold.
    """
    moment = _aware(moment)
    in_hours = business_hours is None or business_hours.contains(moment)
    in_maintenance = maintenance_window is not None and maintenance_window.contains(moment)
    if in_hours and not in_maintenance:
        return ActionVerdict(True, "inside business hours and outside the maintenance window")
    reason = (
        f"inside the maintenance window ({maintenance_window.describe()})"
        if in_maintenance and maintenance_window is not None
        else f"outside business hours ({business_hours.describe()})"
        if business_hours is not None
        else "not allowed"
    )
    return ActionVerdict(False, reason, _next_allowed(moment, business_hours, maintenance_window))


def _next_allowed(
    moment: datetime, business_hours: WeeklyWindow | None, maintenance_window: WeeklyWindow | None
) -> datetime | None:
    probe = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
    # Jump window edges rather than scanning minutes where possible; two weeks bounds any weekly pair.
    for _ in range(2 * 7 * 24 * 4):
        if business_hours is not None and not business_hours.contains(probe):
            probe = business_hours.next_start(probe)
            continue
        if maintenance_window is not None and maintenance_window.contains(probe):
            probe = maintenance_window.next_end(probe)
            continue
        return probe
    return None


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
