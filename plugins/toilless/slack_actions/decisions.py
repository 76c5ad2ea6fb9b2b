"""How a decision reads, for the person who pressed and for the updated message. Pure.

A HITL answer has chosen options, who answered (None when the timeout's default applied) and when; the texts
here are built from those, so the reply to a late press and the message update always say the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from toilless.common import slack

#: Outcomes of a press (also the ``outcome`` of the endpoint's JSON answer).
DECIDED = "decided"
ALREADY_DECIDED = "already_decided"
REFUSED = "refused"
MISSING = "missing"
REPLACED = "replaced"
NOT_WAITING = "not_waiting"
NOT_READY = "not_ready"
INVALID = "invalid"
UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Outcome:
    """What a press did. ``status`` is the HTTP status the endpoint answers with; ``line`` (mrkdwn, escaped)
    replaces the buttons of the message when the question is settled (decided now or before)."""

    outcome: str
    status: int
    text: str
    line: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def settled(self) -> bool:
        return self.outcome in (DECIDED, ALREADY_DECIDED)


def verb(chosen: Sequence[str]) -> str:
    """``approved`` / ``rejected`` for the approval options, else the chosen options quoted."""
    if list(chosen) == ["Approve"]:
        return "approved"
    if list(chosen) == ["Reject"]:
        return "rejected"
    return "answered " + ", ".join(f'"{option}"' for option in chosen) if chosen else "answered"


def decision_phrase(chosen: Sequence[str], by: str | None) -> str:
    """``rejected by timeout`` / ``approved by alice`` (plain text)."""
    return f"{verb(chosen)} by {by}" if by else f"{verb(chosen)} by timeout"


def when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at else "an unknown time"


def decided_line(chosen: Sequence[str], by: str | None, at: datetime | None, *, via_slack: str = "") -> str:
    """The line that replaces the buttons: who answered what and when (mrkdwn, outside values escaped).

    :param via_slack: the presser's mention (``<@U123>``, from :func:`toilless.slack_actions.buttons.mention`) when
        the answer came from Slack; empty for an answer given in Airflow or by the timeout.
    """
    icon = ":white_check_mark:" if list(chosen) == ["Approve"] else ":no_entry_sign:"
    if not by:
        icon = ":hourglass:"
    who = slack.escape(by, 100) if by else "timeout"
    where = f" ({via_slack} in Slack)" if via_slack else ("" if not by else " (in Airflow)")
    return slack.mrkdwn(
        "{} *{}* by {}{} at {}",
        slack.Mrkdwn(icon),
        slack.escape(verb(chosen).capitalize(), 200),
        slack.Mrkdwn(who),
        slack.Mrkdwn(where),
        when(at),
    )


def already_decided_text(chosen: Sequence[str], by: str | None, at: datetime | None) -> str:
    """The reply to a press on a question that was answered before: ``already decided: rejected by timeout``."""
    return f"already decided: {decision_phrase(chosen, by)} at {when(at)}"
