"""Severity, environment, channel, links, maintenance window and the Slack messages of the alert intake."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from toilless.common.config import read_defaults
from toilless.common.policies import WeeklyWindow
from toilless.intake import decisions
from toilless.intake.auth import Credentials, authorized
from toilless.intake.models import Alert, WebhookPayload, validation_errors
from toilless.intake.routing import Route

SETTINGS = read_defaults("alert_intake")
WINDOW = WeeklyWindow.from_config({"days": ["sunday"], "start": "02:00", "end": "04:00", "timezone": "UTC"})


def _alert(labels: dict[str, str], **extra: Any) -> Alert:
    return Alert.model_validate(
        {
            "status": "firing",
            "labels": {"alertname": "X", **labels},
            "startsAt": "2026-11-22T03:00:00Z",
            "fingerprint": "f00d",
            **extra,
        }
    )


@pytest.mark.parametrize(
    ("labels", "code", "respond", "escalate"),
    [
        pytest.param({"severity": "critical"}, "P0", 5, 15, id="critical-P0"),
        pytest.param({"severity": "high"}, "P1", 15, 60, id="high-P1"),
        pytest.param({"severity": "warning"}, "P2", 60, 240, id="warning-P2"),
        pytest.param({"severity": "info"}, "P3", 240, 1440, id="info-P3"),
        pytest.param({"severity": "WARNING"}, "P2", 60, 240, id="case-insensitive"),
        pytest.param({}, "P2", 60, 240, id="no-severity-default"),
        pytest.param({"severity": "info", "priority": "p1"}, "P1", 15, 60, id="priority-label-wins"),
    ],
)
def test_severity_maps_to_priority_with_targets(labels: dict[str, str], code: str, respond: int, escalate: int) -> None:
    priority = decisions.priority_for(labels, SETTINGS)

    assert (priority.code, priority.respond_minutes, priority.escalate_minutes) == (code, respond, escalate)


@pytest.mark.parametrize(
    ("labels", "environment", "channel"),
    [
        pytest.param({"environment": "prod"}, "prod", "urgent", id="prod-label"),
        pytest.param({"env": "production"}, "production", "urgent", id="env-label-production"),
        pytest.param({"environment": "staging"}, "staging", "non_urgent", id="staging"),
        pytest.param(
            {"alertname": "SmartGate5XXResponse - aws-at - centralized"}, "aws-at", "non_urgent", id="from-alertname"
        ),
        pytest.param({"alertname": "Api5xx-prod-regional"}, "prod", "urgent", id="from-alertname-prod"),
        pytest.param({}, "unknown", "non_urgent", id="unknown"),
    ],
)
def test_environment_decides_the_channel(labels: dict[str, str], environment: str, channel: str) -> None:
    found = decisions.environment_for({"alertname": "X", **labels}, SETTINGS)

    assert found == environment
    assert decisions.channel_for(found, SETTINGS) == channel


def test_links_are_configured_per_environment_and_service() -> None:
    alert = _alert({"service": "orders"}, generatorURL="http://prom/graph?g0")

    prod = dict(decisions.links_for(alert, "prod", "http://am:9093", SETTINGS))
    dev = dict(decisions.links_for(alert, "dev", "", SETTINGS))

    assert prod["Grafana"].endswith("var-env=prod&var-service=orders")
    assert "Logs (Kibana)" in prod
    assert "Logs (Loki)" not in prod
    assert 'service=\\"orders\\"' in dev["Logs (Loki)"] or 'service="orders"' in dev["Logs (Loki)"]
    assert prod["Alert source"] == "http://prom/graph?g0"
    assert prod["Silence"].startswith("http://am:9093/#/silences/new?filter=")
    assert "Silence" not in dev


def _route(**spec: Any) -> Route:
    return Route.parse({"name": "r", "dag_id": "d", "match": {"alertname": "X"}, **spec}, 0)


@pytest.mark.parametrize(
    ("moment", "spec", "start", "dry_run"),
    [
        pytest.param(datetime(2026, 11, 24, 12, 0, tzinfo=UTC), {}, True, False, id="outside-window"),
        pytest.param(datetime(2026, 11, 22, 3, 0, tzinfo=UTC), {}, True, True, id="inside-window-dry-run"),
        pytest.param(datetime(2026, 11, 22, 4, 0, tzinfo=UTC), {}, True, False, id="window-end-is-open"),
        pytest.param(
            datetime(2026, 11, 22, 2, 0, tzinfo=UTC),
            {"during_maintenance": "notify_only"},
            False,
            True,
            id="inside-window-notify-only",
        ),
        pytest.param(
            datetime(2026, 11, 22, 3, 0, tzinfo=UTC), {"during_maintenance": "run"}, True, False, id="route-says-run"
        ),
        pytest.param(datetime(2026, 11, 24, 12, 0, tzinfo=UTC), {"dry_run": True}, True, True, id="probation-route"),
    ],
)
def test_maintenance_window_mode(moment: datetime, spec: dict[str, Any], start: bool, dry_run: bool) -> None:
    mode = decisions.run_mode(_route(**spec), moment, WINDOW)

    assert (mode.start, mode.dry_run) == (start, dry_run)
    if dry_run and not spec.get("dry_run"):
        assert "maintenance window" in mode.note


def test_ack_names_priority_run_link_and_links() -> None:
    alert = _alert({"severity": "critical", "environment": "prod"}, annotations={"summary": "disk 95%"})
    facts = decisions.AlertFacts(
        alert,
        decisions.priority_for(alert.labels, SETTINGS),
        "prod",
        [("Grafana", "http://g")],
        link_hosts=frozenset({"airflow", "g"}),
    )

    message = decisions.ack_started(
        facts,
        dag_id="d",
        run_id="alert__X__1",
        run_link="http://airflow/dags/d/runs/alert__X__1",
        target="t=1",
        note="maintenance window (Sunday 02:00-04:00 UTC): started as a dry run",
        paused=True,
    )

    text = message["text"]
    assert text.splitlines()[0] == ":robot_face: P0 [prod] X: runbook started"
    assert "disk 95%" in text
    assert "respond within 5 min, escalate after 15 min" in text
    assert "http://airflow/dags/d/runs/alert__X__1" in text
    assert "dry run" in text
    assert "paused" in text
    assert "<http://g|Grafana>" in text
    assert message["blocks"][0]["type"] == "header"
    assert "<http://airflow/dags/d/runs/alert__X__1|Open the run>" in str(message["blocks"])


def test_no_runbook_message_carries_the_alert_details() -> None:
    alert = _alert({"instance": "web-1"}, annotations={"description": "it broke"})
    facts = decisions.AlertFacts(alert, decisions.priority_for({}, SETTINGS), "dev", [])

    text = decisions.ack_no_runbook(facts)["text"]

    assert "no runbook" in text
    assert "`alertname=X`" in text
    assert "`instance=web-1`" in text
    assert "description: it broke" in text
    assert "f00d" in text


# -- payload model and auth -------------------------------------------------------------------------------------
def test_payload_model_accepts_alertmanager_output_and_keeps_unknown_fields() -> None:
    payload = WebhookPayload.model_validate(
        {
            "version": "4",
            "status": "firing",
            "externalURL": "http://am",
            "futureField": 1,
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "A"},
                    "startsAt": "2026-11-22T03:00:00.999999999Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                    "fingerprint": "abc",
                }
            ],
        }
    )

    assert payload.alerts[0].starts_at_utc == "2026-11-22T03:00:00.999999Z"
    assert payload.alerts[0].ends_at_utc is None
    assert payload.model_extra == {"futureField": 1}


def test_validation_errors_say_where() -> None:
    with pytest.raises(Exception) as caught:
        WebhookPayload.model_validate({"version": "4", "status": "firing", "alerts": [{"status": "on"}]})

    errors = validation_errors(caught.value)
    assert any(error.startswith("alerts.0.status") for error in errors)
    assert any(error.startswith("alerts.0.labels") for error in errors)


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        pytest.param("Bearer s3cret", True, id="bearer"),
        pytest.param("bearer   s3cret", True, id="bearer-case-and-spaces"),
        pytest.param("Bearer s3cre", False, id="bearer-prefix"),
        pytest.param("Bearer s3cretX", False, id="bearer-longer"),
        pytest.param("Basic YW06czNjcmV0", True, id="basic"),  # am:s3cret
        pytest.param("Basic Ym9iOnMzY3JldA==", False, id="basic-wrong-login"),  # bob:s3cret
        pytest.param("Basic czNjcmV0", False, id="basic-no-colon"),
        pytest.param("Basic ***", False, id="basic-not-base64"),
        pytest.param("", False, id="empty"),
        pytest.param(None, False, id="missing"),
    ],
)
def test_authorization_header(header: str | None, ok: bool) -> None:
    assert authorized(header, Credentials("s3cret", "am")) is ok


def test_empty_secret_never_authorizes_and_repr_hides_it() -> None:
    assert authorized("Bearer ", Credentials("")) is False
    assert "s3cret" not in repr(Credentials("s3cret", "am"))


def test_ack_fields_section_names_priority_targets_environment_and_status() -> None:
    alert = _alert({"severity": "critical", "environment": "prod"})
    facts = decisions.AlertFacts(alert, decisions.priority_for(alert.labels, SETTINGS), "prod", [])

    message = decisions.ack_no_runbook(facts)

    fields = message["blocks"][1]
    assert fields["type"] == "section"
    assert [field["type"] for field in fields["fields"]] == ["mrkdwn"] * 5
    texts = [field["text"] for field in fields["fields"]]
    assert texts[0].startswith("*Priority:* P0 (")
    assert texts[1] == "*Respond / escalate:* 5 min / 15 min"
    assert texts[2] == "*Environment:* prod"
    assert texts[3] == "*Status:* firing"
    assert texts[4].startswith("*Incident:* `")
