"""The action gate: the one check every irreversible action makes at the moment it acts.

A decision made minutes earlier (before an approval wait, before a retry) is not enough: the maintenance window may
have opened, another run may have acted on the same target, a dry run may have been asked for. So the step that
acts calls :func:`check_action` right before the API call, with what it has just re-read about the target, and acts
only on ``allowed``. The verdict (allowed, reason, allowed_from, which check decided) goes into the step's result
and from there into the report.

Checks, in order (the reason names the first one that refuses; ``allowed_from`` is the earliest moment all the
time-based ones pass together):

1. dry run: nothing is changed;
2. once per incident: the target's marker says this incident was already acted on;
3. circuit breaker: at most ``breaker_max_actions`` actions on one target within ``breaker_window``;
4. cool-down: at least ``cooldown`` since the last action on the target;
5. business hours (where the SOP has them; several windows = inside every one) and the maintenance window.

Pure: no Airflow import. Windows come from :mod:`toilless.common.policies`; :func:`time_policy` is the one place that
resolves which business hours and maintenance window apply to a SOP.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from toilless.common.errors import InvalidInput
from toilless.common.policies import PolicyError, WeeklyWindow, action_allowed, next_allowed, window_from_config
from toilless.incidents import recorder as incidents

logger = logging.getLogger(__name__)

ALLOWED = "allowed"
DRY_RUN = "dry_run"
ONCE_PER_INCIDENT = "once_per_incident"
CIRCUIT_BREAKER = "circuit_breaker"
COOLDOWN = "cooldown"
TIME_POLICY = "time_policy"


class GateConfigError(InvalidInput):
    """A gate setting (cool-down, circuit breaker, windows) is malformed; the message says which."""


@dataclass(frozen=True)
class GatePolicy:
    """What an action must respect. Built from configuration by the SOP (see :func:`gate_policy`)."""

    dry_run: bool = False
    #: Every window must contain the moment (configured hours, plus a run's narrower hours on top).
    business_hours: tuple[WeeklyWindow, ...] = ()
    maintenance_window: WeeklyWindow | None = None
    cooldown: timedelta = timedelta(0)
    #: None: no circuit breaker.
    breaker_max_actions: int | None = None
    breaker_window: timedelta = timedelta(hours=24)

    def __post_init__(self) -> None:
        if self.cooldown < timedelta(0):
            raise GateConfigError(f"cool-down {self.cooldown} must not be negative")
        if self.breaker_max_actions is not None and self.breaker_max_actions < 1:
            raise GateConfigError(f"circuit breaker max_actions {self.breaker_max_actions} must be at least 1")
        if self.breaker_window <= timedelta(0):
            raise GateConfigError(f"circuit breaker window {self.breaker_window} must be positive")


@dataclass(frozen=True)
class TargetHistory:
    """What the target's own markers say about past actions on it (read fresh, right before acting)."""

    #: The last action on the target by anyone the SOP can see (its marker, the provider's event log).
    last_action_at: datetime | None = None
    #: Toilless's recent actions on the target, for the circuit breaker.
    recent_actions: tuple[datetime, ...] = ()
    #: The incident this action is for was already acted on (the marker names it).
    incident_done: bool = False
    incident_note: str = ""


@dataclass(frozen=True)
class GateVerdict:
    """Whether the action may happen now; if not, which check refused, why, and from when it may."""

    allowed: bool
    check: str
    reason: str
    action: str
    target: str
    checked_at: datetime
    allowed_from: datetime | None = None
    refusals: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "check": self.check,
            "reason": self.reason,
            "action": self.action,
            "target": self.target,
            "checked_at": self.checked_at.isoformat(),
            "allowed_from": self.allowed_from.isoformat() if self.allowed_from else None,
            "refusals": list(self.refusals),
        }


def check_action(
    action: str,
    target: str,
    *,
    now: datetime,
    policy: GatePolicy,
    history: TargetHistory = TargetHistory(),
) -> GateVerdict:
    """The gate. Call it right before the irreversible call, with ``history`` just re-read from the target."""
    if now.tzinfo is None:
        raise PolicyError("the action gate needs a timezone-aware 'now'")
    verdict = _verdict_factory(action, target, now)
    if policy.dry_run:
        return verdict(False, DRY_RUN, f"dry run: would {action} on {target}; nothing changed")
    if history.incident_done:
        note = f" ({history.incident_note})" if history.incident_note else ""
        return verdict(False, ONCE_PER_INCIDENT, f"already acted on {target} for this incident{note}: not again")

    refusals: list[tuple[str, str]] = []
    earliest = now
    breaker_ends = breaker_open_until(history.recent_actions, now=now, policy=policy)
    if breaker_ends is not None:
        refusals.append(
            (
                CIRCUIT_BREAKER,
                f"circuit breaker open: {policy.breaker_max_actions} action(s) on {target} within "
                f"{_hours(policy.breaker_window)}; allowed again from {breaker_ends.isoformat()}",
            )
        )
        earliest = max(earliest, breaker_ends)
    cooldown_ends = cooldown_until(history.last_action_at, now=now, cooldown=policy.cooldown)
    if cooldown_ends is not None:
        assert history.last_action_at is not None
        refusals.append(
            (
                COOLDOWN,
                f"cool-down: last action on {target} at {history.last_action_at.isoformat()}, "
                f"{_hours(policy.cooldown)} must pass (until {cooldown_ends.isoformat()})",
            )
        )
        earliest = max(earliest, cooldown_ends)
    timing = action_allowed(now, business_hours=policy.business_hours, maintenance_window=policy.maintenance_window)
    if not timing.allowed:
        refusals.append((TIME_POLICY, timing.reason))
    if not refusals:
        return verdict(True, ALLOWED, f"{action} on {target} allowed: {timing.reason}")
    allowed_from = next_allowed(earliest, policy.business_hours, policy.maintenance_window, inclusive=True)
    check, reason = refusals[0]
    return verdict(False, check, reason, allowed_from, tuple(code for code, _ in refusals))


def _verdict_factory(action: str, target: str, now: datetime) -> Any:
    def build(
        allowed: bool,
        check: str,
        reason: str,
        allowed_from: datetime | None = None,
        refusals: tuple[str, ...] = (),
    ) -> GateVerdict:
        verdict = GateVerdict(
            allowed=allowed,
            check=check,
            reason=reason,
            action=action,
            target=target,
            checked_at=now,
            allowed_from=allowed_from,
            refusals=refusals or ((check,) if not allowed else ()),
        )
        incidents.gate_verdict(verdict)  # on the run's incident timeline; never raises, never blocks the verdict
        return verdict

    return build


def cooldown_until(last_action_at: datetime | None, *, now: datetime, cooldown: timedelta) -> datetime | None:
    """When the cool-down after ``last_action_at`` ends, or None if it is over (or there was no action)."""
    if last_action_at is None or cooldown <= timedelta(0):
        return None
    ends = _aware(last_action_at) + cooldown
    return ends if now < ends else None


def breaker_open_until(actions: Iterable[datetime], *, now: datetime, policy: GatePolicy) -> datetime | None:
    """When the circuit breaker closes again, or None if fewer than max actions fall within the window."""
    if policy.breaker_max_actions is None:
        return None
    window_start = now - policy.breaker_window
    recent = sorted(moment for moment in (_aware(a) for a in actions) if window_start < moment <= now)
    if len(recent) < policy.breaker_max_actions:
        return None
    # The breaker closes when enough of the oldest actions have left the window to allow one more.
    return recent[len(recent) - policy.breaker_max_actions] + policy.breaker_window


# -- history kept on the target (tags, annotations): epoch seconds, space separated --------------------------------


def encode_history(actions: Iterable[datetime], *, now: datetime, keep: timedelta, max_entries: int = 20) -> str:
    """The recent actions as ``"<epoch> <epoch> ..."``: only digits and spaces, so any tag or annotation holds it."""
    cutoff = now - keep
    recent = sorted({int(_aware(moment).timestamp()) for moment in actions if _aware(moment) > cutoff})
    return " ".join(str(stamp) for stamp in recent[-max_entries:])


#: How far ahead of now a recorded action may be dated and still count (clocks of hosts differ a little). Anything
#: later records no action anyone took (an edited annotation, a broken clock) and would hold a cool-down forever.
MARKER_CLOCK_SKEW = timedelta(minutes=5)


def in_the_future(moment: datetime | None, *, now: datetime, what: str = "marker") -> bool:
    """True (and logged) if ``moment`` lies more than :data:`MARKER_CLOCK_SKEW` after ``now``: ignore it."""
    if moment is None or _aware(moment) <= now + MARKER_CLOCK_SKEW:
        return False
    logger.warning("ignoring %s dated in the future (%s, now %s)", what, moment.isoformat(), now.isoformat())
    return True


def decode_history(text: str | None, *, now: datetime | None = None) -> tuple[datetime, ...]:
    """Inverse of :func:`encode_history`; unreadable entries are skipped, and with ``now`` future-dated ones too."""
    moments = []
    for part in (text or "").split():
        # The text is on the target (a tag, an annotation) where anyone may edit it: only ASCII digits (str.isdigit
        # also takes "²" and other scripts' digits), and only moments a datetime can hold.
        if not (part.isascii() and part.isdigit()):
            continue
        try:
            moment = datetime.fromtimestamp(int(part), tz=UTC)
        except (OverflowError, OSError, ValueError):
            continue
        if now is not None and in_the_future(moment, now=now, what="action history entry"):
            continue
        moments.append(moment)
    return tuple(moments)


# -- configuration -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimePolicy:
    business_hours: WeeklyWindow | None
    maintenance_window: WeeklyWindow | None


def time_policy(
    toilless_config: Mapping[str, Any],
    sop_config: Mapping[str, Any] | None = None,
    *,
    business_hours: bool = True,
    maintenance_window: bool = True,
) -> TimePolicy:
    """The business hours and maintenance window that apply to a SOP: its own setting if set, else toilless.yaml's.

    ``business_hours=False`` for SOPs whose actions are not tied to office hours (storage growth);
    ``maintenance_window=False`` when the SOP's configuration opts out (``respect_maintenance_window: false``).
    """
    hours_spec, window_spec = window_specs(toilless_config, sop_config)
    try:
        hours = window_from_config(hours_spec)
        window = window_from_config(window_spec)
    except (PolicyError, TypeError) as err:
        raise GateConfigError(f"business hours or maintenance window: {err}") from err
    return TimePolicy(
        business_hours=hours if business_hours else None,
        maintenance_window=window if maintenance_window else None,
    )


def window_specs(
    toilless_config: Mapping[str, Any], sop_config: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The business-hours and maintenance-window settings that apply (the SOP's own if set, else toilless.yaml's),
    as plain settings (JSON-able, for a run's resolved settings); None where unset."""
    sop = sop_config or {}
    hours = sop.get("business_hours") or toilless_config.get("business_hours")
    window = sop.get("maintenance_window") or toilless_config.get("maintenance_window")
    return (dict(hours) if hours else None, dict(window) if window else None)


def maintenance_window(
    toilless_config: Mapping[str, Any], sop_config: Mapping[str, Any] | None = None
) -> WeeklyWindow | None:
    """The maintenance window that applies (the SOP's own, else toilless.yaml's), or None when none is set."""
    return time_policy(toilless_config, sop_config).maintenance_window


def gate_policy(
    settings: Mapping[str, Any] | None,
    *,
    dry_run: bool,
    time: TimePolicy,
    extra_business_hours: Sequence[WeeklyWindow] = (),
    cooldown: timedelta | None = None,
) -> GatePolicy:
    """A :class:`GatePolicy` from a SOP's ``gate`` settings section.

    ``{"cooldown_minutes": 60, "circuit_breaker": {"max_actions": 3, "window_hours": 24}}``; ``cooldown`` wins over
    ``cooldown_minutes`` when the SOP has its own (RDS's six hours). ``extra_business_hours`` are a run's narrower
    hours, applied on top of the configured ones.
    """
    gate = dict(settings or {})
    breaker = dict(gate.get("circuit_breaker") or {})
    try:
        if cooldown is None:
            cooldown = timedelta(minutes=float(gate.get("cooldown_minutes", 0)))
        max_actions = breaker.get("max_actions")
        hours = [window for window in (time.business_hours,) if window is not None] + list(extra_business_hours)
        return GatePolicy(
            dry_run=bool(dry_run),
            business_hours=tuple(hours),
            maintenance_window=time.maintenance_window,
            cooldown=cooldown,
            breaker_max_actions=int(max_actions) if max_actions is not None else None,
            breaker_window=timedelta(hours=float(breaker.get("window_hours", 24))),
        )
    except (TypeError, ValueError) as err:
        raise GateConfigError(f"gate settings {gate!r}: {err}") from err


def sop_gate_policy(
    toilless_config: Mapping[str, Any],
    settings: Mapping[str, Any],
    *,
    business_hours: bool = False,
    dry_run: bool | None = None,
    cooldown: timedelta | None = None,
) -> GatePolicy:
    """The gate policy of a SOP's resolved settings: its ``gate`` section, its ``dry_run``, and the windows.

    The windows are the SOP's own ``business_hours`` / ``maintenance_window`` if set, else toilless.yaml's;
    ``respect_maintenance_window: false`` in the SOP's settings opts out of the maintenance window. Business hours
    apply only where the SOP's actions are tied to office hours (``business_hours=True``). ``dry_run`` replaces the
    settings' own where the run decides it later (a run's Param read at the moment of acting); ``cooldown``
    replaces the ``gate`` section's where one action has its own (a scale's cool-down).
    """
    timing = time_policy(
        toilless_config,
        settings,
        business_hours=business_hours,
        maintenance_window=bool(settings.get("respect_maintenance_window", True)),
    )
    dry = bool(settings["dry_run"]) if dry_run is None else dry_run
    return gate_policy(settings.get("gate"), dry_run=dry, time=timing, cooldown=cooldown)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _hours(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:g} h" if hours >= 1 else f"{span.total_seconds() / 60:g} min"
