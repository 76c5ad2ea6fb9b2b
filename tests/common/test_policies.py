from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from toilless.common.policies import PolicyError, WeeklyWindow, action_allowed

MAINTENANCE = WeeklyWindow.from_config({"days": ["sunday"], "start": "02:00", "end": "04:00", "timezone": "UTC"})
HOURS = WeeklyWindow.from_config(
    {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00", "timezone": "Europe/Berlin"}
)
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        pytest.param(datetime(2026, 11, 22, 2, 0, tzinfo=UTC), True, id="sunday-start-inclusive"),
        pytest.param(datetime(2026, 11, 22, 3, 59, tzinfo=UTC), True, id="sunday-inside"),
        pytest.param(datetime(2026, 11, 22, 4, 0, tzinfo=UTC), False, id="sunday-end-exclusive"),
        pytest.param(datetime(2026, 11, 23, 3, 0, tzinfo=UTC), False, id="monday-same-time"),
        pytest.param(datetime(2026, 11, 22, 4, 30, tzinfo=BERLIN), True, id="other-timezone-converted"),
    ],
)
def test_maintenance_window(moment: datetime, inside: bool) -> None:
    assert MAINTENANCE.contains(moment) is inside


def test_overnight_window_belongs_to_the_day_it_starts() -> None:
    night = WeeklyWindow.from_config({"days": ["friday"], "start": "22:00", "end": "02:00"})
    assert night.contains(datetime(2026, 11, 20, 23, 0, tzinfo=UTC))  # Friday night
    assert night.contains(datetime(2026, 11, 21, 1, 0, tzinfo=UTC))  # Saturday early: Friday's window
    assert not night.contains(datetime(2026, 11, 22, 1, 0, tzinfo=UTC))  # Sunday early: no Saturday window


def test_business_hours_follow_daylight_saving() -> None:
    # 08:30 UTC is 09:30 in Berlin in winter (inside) and 10:30 in summer (inside); 16:30 UTC is 17:30 winter (outside).
    assert HOURS.contains(datetime(2026, 11, 23, 8, 30, tzinfo=UTC))
    assert not HOURS.contains(datetime(2026, 11, 23, 16, 30, tzinfo=UTC))
    assert HOURS.contains(datetime(2026, 7, 6, 14, 30, tzinfo=UTC))


def berlin(day: int, hour: int) -> datetime:
    """November 2026 in Berlin (the business hours' timezone)."""
    return datetime(2026, 11, day, hour, 0, tzinfo=BERLIN)


def utc(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "business_hours", "maintenance_window", "refusal", "allowed_from"),
    [
        pytest.param(berlin(23, 10), HOURS, MAINTENANCE, None, None, id="inside-hours-no-window"),
        pytest.param(
            berlin(23, 22),
            HOURS,
            MAINTENANCE,
            "outside business hours",
            berlin(24, 9),
            id="at-night-says-when-it-will-be-allowed",
        ),
        pytest.param(
            berlin(27, 18), HOURS, None, "outside business hours", berlin(30, 9), id="friday-evening-waits-for-monday"
        ),
        pytest.param(
            utc(22, 3),
            None,
            MAINTENANCE,
            "maintenance window (Sunday 02:00-04:00 UTC)",
            utc(22, 4),
            id="maintenance-window-names-the-window-and-its-end",
        ),
    ],
)
def test_action_allowed(now, business_hours, maintenance_window, refusal: str | None, allowed_from) -> None:
    verdict = action_allowed(now, business_hours=business_hours, maintenance_window=maintenance_window)
    assert bool(verdict.allowed) is (refusal is None)
    if refusal is not None:
        assert refusal in verdict.reason
    assert verdict.allowed_from == allowed_from


@pytest.mark.parametrize(
    "config",
    [
        pytest.param({"days": ["funday"], "start": "02:00", "end": "04:00"}, id="bad-day"),
        pytest.param({"days": ["sunday"], "start": "2am", "end": "04:00"}, id="bad-time"),
        pytest.param({"days": ["sunday"], "start": "02:00", "end": "02:00"}, id="empty"),
        pytest.param({"days": ["sunday"], "start": "02:00", "end": "04:00", "timezone": "Mars/Olympus"}, id="tz"),
        pytest.param({"days": [], "start": "02:00", "end": "04:00"}, id="no-days"),
        pytest.param({"start": "02:00", "end": "04:00"}, id="missing-days"),
    ],
)
def test_malformed_windows_are_refused(config) -> None:
    with pytest.raises(PolicyError):
        WeeklyWindow.from_config(config)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(PolicyError):
        MAINTENANCE.contains(datetime(2026, 11, 22, 3, 0))


def test_describe() -> None:
    assert MAINTENANCE.describe() == "Sunday 02:00-04:00 UTC"
    assert HOURS.start == time(9, 0)
