"""Action kind -> handler. A button's value names its kind (``hitl``, ``incident_ack``, ``silence``); the endpoint
looks the handler up here. Other packages add theirs with :func:`register` (the alert-triage Alertmanager hook for
``silence``, say) without touching the endpoint.

A handler gets a :class:`Press` whose signature is already verified and returns an
:class:`~toilless.slack_actions.decisions.Outcome`. It must be idempotent: Slack retries, people press twice.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from toilless.slack_actions import buttons, decisions
from toilless.slack_actions.decisions import Outcome

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Press:
    """One verified button press: who (Slack id and the mapped Airflow user, None when unmapped), which button."""

    slack_user_id: str
    slack_user_name: str
    airflow_user: str | None
    kind: str
    ref: dict[str, Any]
    message: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[Press], Outcome]
_HANDLERS: dict[str, Handler] = {}


def register(kind: str, handler: Handler) -> None:
    """Handle presses of ``kind`` with ``handler`` (replacing any earlier one)."""
    _HANDLERS[kind] = handler


def handler_for(kind: str) -> Handler | None:
    return _HANDLERS.get(kind)


def kinds() -> list[str]:
    return sorted(_HANDLERS)


def _unmapped(press: Press) -> Outcome:
    return Outcome(
        decisions.REFUSED,
        403,
        "your Slack user is not mapped to an Airflow user (slack_actions.respondents): answer in Airflow",
    )


def answer_hitl(press: Press) -> Outcome:
    """Answer a human-in-the-loop task as the presser's Airflow user (:mod:`toilless.slack_actions.hitl`)."""
    if press.airflow_user is None:
        return _unmapped(press)
    option = press.ref.get("o")
    if not isinstance(option, str):
        return Outcome(decisions.INVALID, 400, "this button has no option")
    from toilless.slack_actions import hitl

    outcome = hitl.answer(press.ref, option, press.airflow_user)
    if outcome.outcome == decisions.DECIDED:
        chosen = outcome.details["chosen_options"]
        from datetime import datetime

        at = datetime.fromisoformat(outcome.details["responded_at"])
        line = decisions.decided_line(chosen, outcome.details["by"], at, via_slack=buttons.mention(press.slack_user_id))
        outcome = Outcome(outcome.outcome, outcome.status, outcome.text, line, outcome.details)
    return outcome


#: Where the incident store lives (built in parallel: ``acknowledge(incident_id, by, via)``).
INCIDENTS_MODULE = "toilless.incidents"


def acknowledge_incident(press: Press) -> Outcome:
    """Acknowledge an incident through the incident store's ``acknowledge(incident_id, by, via)``, when installed.

    Acknowledging needs no Airflow permission, but it names a person: only mapped Slack users may do it, so the
    ack says who in Airflow's terms.
    """
    if press.airflow_user is None:
        return _unmapped(press)
    incident_id = press.ref.get("i")
    if not isinstance(incident_id, str) or not incident_id:
        return Outcome(decisions.INVALID, 400, "this button names no incident")
    try:
        store = importlib.import_module(INCIDENTS_MODULE)
    except ImportError:
        log.error("Acknowledge pressed for incident %s, but %s is not installed", incident_id, INCIDENTS_MODULE)
        return Outcome(decisions.UNAVAILABLE, 503, "acknowledging from Slack is not available yet: ack it in Airflow")
    result = store.acknowledge(incident_id, by=press.airflow_user, via="slack")
    return _ack_outcome(result, press)


def _ack_outcome(result: Any, press: Press) -> Outcome:
    """The store's answer as an outcome. Its exact return type is the store's; a mapping or object with
    ``acknowledged_by`` / ``acknowledged_at`` / ``already`` is understood, anything else counts as done now."""
    from toilless.common import slack

    def get(name: str) -> Any:
        return result.get(name) if isinstance(result, dict) else getattr(result, name, None)

    by = get("acknowledged_by") or press.airflow_user
    at = get("acknowledged_at")
    already = bool(get("already"))
    when = decisions.when(at) if hasattr(at, "strftime") else (str(at) if at else "now")
    via = buttons.mention(press.slack_user_id)
    line = slack.mrkdwn(":eyes: *Acknowledged* by {} ({} in Slack) at {}", by, slack.Mrkdwn(via), when)
    if already:
        return Outcome(decisions.ALREADY_DECIDED, 200, f"already acknowledged by {by} at {when}", line)
    return Outcome(decisions.DECIDED, 200, f"acknowledged by {by}", line)


def silence_unavailable(press: Press) -> Outcome:
    """When the alert-triage SOP (which owns Alertmanager silences) is not installed: says so, decides nothing."""
    return Outcome(decisions.UNAVAILABLE, 503, "silencing from Slack is not available: silence it in Alertmanager")


#: Where silences are made (alert triage: AlertmanagerHook, max_silence_minutes, the list of Toilless' silences).
SILENCE_MODULE = "toilless.sops.triage_alert.server"


def silence_alert(press: Press) -> Outcome:
    """Silence the incident's alert in Alertmanager for the button's hours (``silence_incident`` of the triage SOP):
    matchers exactly the alert's labels, at most the configured maximum, once per incident and duration.

    Only mapped Slack users (respondents) may silence: the silence names who asked for it.
    """
    if press.airflow_user is None:
        return _unmapped(press)
    incident_id, hours = press.ref.get("i"), press.ref.get("h")
    if not isinstance(incident_id, str) or not incident_id:
        return Outcome(decisions.INVALID, 400, "this button names no incident")
    if isinstance(hours, bool) or not isinstance(hours, int | float) or hours <= 0:
        return Outcome(decisions.INVALID, 400, "this button names no duration")
    try:
        silencer = importlib.import_module(SILENCE_MODULE)
    except ImportError:
        log.error("Silence pressed for incident %s, but %s is not installed", incident_id, SILENCE_MODULE)
        return silence_unavailable(press)
    from toilless.common.errors import InvalidInput
    from toilless.incidents.events import UnknownIncident

    try:
        result = silencer.silence_incident(incident_id, hours, by=press.airflow_user)
    except UnknownIncident as err:
        return Outcome(decisions.MISSING, 404, str(err))
    except InvalidInput as err:  # over max_silence_minutes, labels Alertmanager refuses: nothing silenced
        return Outcome(decisions.INVALID, 422, str(err))
    return _silence_outcome(result, hours, press)


def _silence_outcome(result: dict[str, Any], hours: float, press: Press) -> Outcome:
    from toilless.common import slack

    until = str(result.get("ends_at") or "?")[:16].replace("T", " ")
    via = buttons.mention(press.slack_user_id)
    if result.get("already"):
        text = f"already silenced for {hours:g}h (silence {result['silence_id']} by {result.get('created_by')}, until {until} UTC)"
        line = slack.mrkdwn(
            ":mute: *Already silenced* for {}h by {} until {} UTC (silence {}); pressed again by {}",
            f"{hours:g}",
            str(result.get("created_by") or "?"),
            until,
            slack.code(str(result["silence_id"])),
            slack.Mrkdwn(via),
        )
        return Outcome(decisions.ALREADY_DECIDED, 200, text, line, dict(result))
    line = slack.mrkdwn(
        ":mute: *Silenced* {} for {}h by {} ({} in Slack) until {} UTC (silence {})",
        str(result.get("alertname") or "alert"),
        f"{hours:g}",
        press.airflow_user,
        slack.Mrkdwn(via),
        until,
        slack.code(str(result["silence_id"])),
    )
    return Outcome(decisions.DECIDED, 200, f"silenced for {hours:g}h until {until} UTC", line, dict(result))


register(buttons.HITL, answer_hitl)
register(buttons.INCIDENT_ACK, acknowledge_incident)
register(buttons.SILENCE, silence_alert)
