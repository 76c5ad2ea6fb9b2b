"""The escalation message escapes outside text and names who is now on the hook."""

from __future__ import annotations

from toilless.sops.incident_escalation.steps import escalation_message

STEP = {
    "incident_id": "aa01",
    "alertname": "<!channel> Orders*Down",
    "severity": "P0",
    "level": 1,
    "role": "secondary",
    "person": "bob",
    "minutes_unacknowledged": 15.0,
}


def test_message_escapes_the_alert_name_and_names_the_secondary() -> None:
    message = escalation_message(STEP, {}, "http://airflow.local/toilless/incidents/aa01/ack")
    assert "<!channel>" not in message["text"]
    assert "secondary bob" in message["text"]
    assert "after 15 min" in message["text"]


def test_message_mentions_a_mapped_slack_user_only_if_the_handle_is_plain() -> None:
    assert "<@U0BOB>" in escalation_message(STEP, {"slack_users": {"bob": "U0BOB"}}, "x")["text"]
    assert "<!here>" not in escalation_message(STEP, {"slack_users": {"bob": "!here>"}}, "x")["text"]
