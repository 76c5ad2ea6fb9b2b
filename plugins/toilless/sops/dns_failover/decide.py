"""The failover decision (pure: no Airflow, no network): plain data in, a :class:`Decision` out.

SOP: if the active server is not reachable, fail over at once; if it is reachable (but failing), read its logs and
give it the SOP's five minutes to come back, then fail over; if it answers, there is nothing to do. And never fail
over to a standby that does not answer correctly itself: that would trade one broken server for another, so a
person is paged instead and nothing is changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from toilless.sops.dns_failover.health import ANSWERING, FAILING, UNREACHABLE

NONE = "none"
WAIT = "wait"
FAILOVER_NOW = "failover_now"
PAGE = "page"
ACTIONS = (NONE, WAIT, FAILOVER_NOW, PAGE)


@dataclass(frozen=True)
class Decision:
    action: str
    active: str
    standby: str
    active_state: str
    standby_state: str
    reason: str

    @property
    def fails_over(self) -> bool:
        return self.action == FAILOVER_NOW

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(active: str, standby: str, health: Mapping[str, Mapping[str, Any]]) -> Decision:
    """What to do, from each server's health (``health[name]["state"]``: answering, failing, unreachable)."""
    active_state = str(health[active]["state"])
    standby_state = str(health[standby]["state"])

    def made(action: str, reason: str) -> Decision:
        return Decision(action, active, standby, active_state, standby_state, reason)

    if active_state == ANSWERING:
        return made(NONE, f"{active} (active) answers every name correctly: nothing to do")
    if standby_state != ANSWERING:
        return made(
            PAGE,
            f"{active} (active) is {active_state} and the standby {standby} is {standby_state} too: no failover to a "
            "standby that does not answer correctly; a person must look now",
        )
    if active_state == UNREACHABLE:
        return made(FAILOVER_NOW, f"{active} (active) is unreachable and {standby} answers correctly: fail over now")
    if active_state == FAILING:
        return made(
            WAIT,
            f"{active} (active) is reachable but failing: wait for it to recover, then fail over to {standby}",
        )
    raise ValueError(f"unknown server state {active_state!r}")


def after_wait(decision: Mapping[str, Any], wait: Mapping[str, Any] | None) -> Decision:
    """The decision once the wait is over: recovered → nothing; still failing → fail over (standby re-checked)."""
    first = Decision(**{key: decision[key] for key in Decision.__dataclass_fields__})
    if first.action != WAIT:
        return first
    status = (wait or {}).get("status")
    standby_state = str((wait or {}).get("standby_state") or first.standby_state)
    if status == "recovered":
        return Decision(
            NONE,
            first.active,
            first.standby,
            ANSWERING,
            standby_state,
            f"{first.active} recovered within the wait: no failover",
        )
    if standby_state != ANSWERING:
        return Decision(
            PAGE,
            first.active,
            first.standby,
            str((wait or {}).get("active_state") or first.active_state),
            standby_state,
            f"{first.active} did not recover and the standby {first.standby} is {standby_state} now: no failover; a person must look now",
        )
    waited = (wait or {}).get("waited_seconds")
    how_long = f" for {float(waited):.0f} s" if waited is not None else ""
    return Decision(
        FAILOVER_NOW,
        first.active,
        first.standby,
        str((wait or {}).get("active_state") or first.active_state),
        standby_state,
        f"{first.active} did not recover{how_long}: fail over to {first.standby}",
    )
