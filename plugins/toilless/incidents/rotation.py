"""The on-call rotation as data (include/oncall_rotation.yaml): who is primary, secondary and tertiary each week,
handed over on Mondays at 00:00 UTC, and the engineering manager at the top of the ladder. Pure.

```yaml
engineering_manager: dana
repeat: true            # after the last week, start again from the first
weeks:
  - {week_of: 2026-11-30, primary: alice, secondary: bob, tertiary: carol}
  - {week_of: 2026-12-07, primary: bob, secondary: carol, tertiary: alice}
```

Every ``week_of`` is a Monday and each follows the previous by exactly seven days: a gap (a week nobody is on call)
or an overlap is refused at load, naming the week, rather than discovered when an incident needs someone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from toilless.incidents.events import IncidentError

LADDER = ("primary", "secondary", "tertiary", "engineering_manager")


class RotationError(IncidentError):
    """The rotation data is malformed (a gap, an overlap, a missing role) or does not cover a moment."""


@dataclass(frozen=True)
class Week:
    week_of: date
    primary: str
    secondary: str
    tertiary: str


@dataclass(frozen=True)
class Rotation:
    weeks: tuple[Week, ...]
    engineering_manager: str
    repeat: bool = False

    def week_at(self, moment: datetime) -> Week:
        """The week on call at ``moment`` (handover Monday 00:00 UTC)."""
        if moment.tzinfo is None:
            raise RotationError("the rotation needs a timezone-aware moment")
        day = moment.astimezone(UTC).date()
        monday = day - timedelta(days=day.weekday())
        first = self.weeks[0].week_of
        index = (monday - first).days // 7
        if index < 0:
            raise RotationError(f"the rotation starts on {first}; nobody is on call in the week of {monday}")
        if index >= len(self.weeks):
            if not self.repeat:
                raise RotationError(
                    f"the rotation ends with the week of {self.weeks[-1].week_of}; nobody is on call in the week "
                    f"of {monday} (add weeks, or set repeat: true)"
                )
            index %= len(self.weeks)
        return self.weeks[index]

    def ladder(self, moment: datetime) -> list[tuple[str, str]]:
        """``[(role, person), ...]`` from primary to the engineering manager, at ``moment``."""
        week = self.week_at(moment)
        return [
            ("primary", week.primary),
            ("secondary", week.secondary),
            ("tertiary", week.tertiary),
            ("engineering_manager", self.engineering_manager),
        ]


def parse_rotation(data: Any) -> Rotation:
    """A :class:`Rotation` from the YAML's data; every problem is a :class:`RotationError` that names it."""
    if not isinstance(data, Mapping):
        raise RotationError("the rotation must be a mapping with 'weeks' and 'engineering_manager'")
    manager = data.get("engineering_manager")
    if not isinstance(manager, str) or not manager.strip():
        raise RotationError("the rotation needs an 'engineering_manager' (the top of the escalation ladder)")
    raw_weeks = data.get("weeks")
    if not isinstance(raw_weeks, list) or not raw_weeks:
        raise RotationError("the rotation needs a non-empty list 'weeks'")
    weeks: list[Week] = []
    for index, raw in enumerate(raw_weeks):
        if not isinstance(raw, Mapping):
            raise RotationError(f"weeks[{index}] must be a mapping")
        week_of = _date(raw.get("week_of"), index)
        if week_of.weekday() != 0:
            raise RotationError(f"weeks[{index}].week_of {week_of} is a {week_of:%A}: handovers are on Mondays")
        people = {}
        for role in ("primary", "secondary", "tertiary"):
            person = raw.get(role)
            if not isinstance(person, str) or not person.strip():
                raise RotationError(f"weeks[{index}] (week of {week_of}) has no {role}")
            people[role] = person.strip()
        if weeks:
            expected = weeks[-1].week_of + timedelta(days=7)
            if week_of > expected:
                raise RotationError(
                    f"the rotation has a gap: nobody is on call from {expected} to {week_of - timedelta(days=1)} "
                    f"(weeks[{index}] starts {week_of}, the previous week ends {expected})"
                )
            if week_of < expected:
                raise RotationError(
                    f"weeks[{index}] (week of {week_of}) overlaps the week of {weeks[-1].week_of}: weeks must follow "
                    "each other, seven days apart, in order"
                )
        weeks.append(Week(week_of, **people))
    return Rotation(tuple(weeks), manager.strip(), bool(data.get("repeat", False)))


def load_rotation(path: Path) -> Rotation:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise RotationError(f"cannot read the rotation {path}: {err}") from err
    except yaml.YAMLError as err:
        raise RotationError(f"the rotation {path} is not valid YAML: {err}") from err
    return parse_rotation(data)


def _date(value: Any, index: int) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as err:
        raise RotationError(f"weeks[{index}].week_of {value!r} is not a date (YYYY-MM-DD)") from err
