"""Task bodies of ``incident_escalation`` (the only Airflow-facing module of the package)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from toilless.common import slack


def escalation_message(step: Mapping[str, Any], settings: Mapping[str, Any], ack_url: str) -> dict[str, Any]:
    """The Slack message of one escalation step (outside text escaped)."""
    person = str(step["person"])
    handle = dict(settings.get("slack_users") or {}).get(person)
    who = slack.Mrkdwn(f"<@{handle}>") if handle and str(handle).isalnum() else slack.escape(person, 100)
    text = slack.mrkdwn(
        ":rotating_light: *Escalated* {} {} not acknowledged after {} min: now {} {}\nIncident {}. Acknowledge: "
        "`POST {}`",
        slack.escape(step["severity"], 4),
        slack.code(step["alertname"], 200),
        slack.escape(f"{step['minutes_unacknowledged']:g}", 20),
        slack.escape(str(step["role"]).replace("_", " "), 40),
        who,
        slack.code(step["incident_id"], 70),
        slack.escape(ack_url, 300),
    )
    return {"text": text, "blocks": [slack.section(text)]}


def escalate_incidents() -> dict[str, Any]:
    from toilless.common.reporting import airflow_base_url, post_message
    from toilless.incidents import db, flush_outbox
    from toilless.incidents.escalation import sweep
    from toilless.incidents.settings import load_settings, rotation_of

    settings = load_settings()
    rotation = rotation_of(settings)  # a gap fails the run here, loudly, before anyone is paged wrongly
    drained = flush_outbox()
    channel = str(settings.get("incident_channel") or "urgent")
    base = airflow_base_url()

    def notify(_: str, step: Mapping[str, Any]) -> None:
        message = escalation_message(step, settings, f"{base}/toilless/incidents/{step['incident_id']}/ack")
        post_message(channel, message["text"], blocks=message["blocks"])

    steps = sweep(db.engine(), now=datetime.now(UTC), rotation=rotation, settings=settings, notify=notify)
    return {"escalated": steps[:100], "escalations": len(steps), "outbox": drained}
