"""Acknowledge (REST, the shared function) and escalate along the ladder by severity, with time travel."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine

from tests.fixtures.alert_intake import INTAKE_TOKEN, make_alert, make_payload
from toilless.incidents import events as ev
from toilless.incidents.rotation import RotationError, load_rotation, parse_rotation
from toilless.incidents.severity import InvalidSeverity, parse_severity, targets

REPO = Path(__file__).resolve().parents[2]
ROTATION = {
    "engineering_manager": "dana",
    "weeks": [
        {"week_of": "2026-11-30", "primary": "alice", "secondary": "bob", "tertiary": "carol"},
        {"week_of": "2026-12-07", "primary": "bob", "secondary": "carol", "tertiary": "erin"},
    ],
    "repeat": True,
}


def _monday(weeks_from_now: int = 0) -> datetime:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=today.weekday()) + timedelta(weeks=weeks_from_now)


def _open_incident(incident_id: str, severity: str, at: datetime) -> None:
    from toilless.incidents import record

    record(ev.ALERT_RECEIVED, incident_id=incident_id, at=at, data={"alertname": "OrdersDown", "severity": severity})


def _sweep(engine: Any, rotation: Any, sent: list[tuple[str, int]]) -> list[dict[str, Any]]:
    from toilless.incidents.escalation import sweep

    return sweep(
        engine,
        now=datetime.now(UTC),
        rotation=rotation,
        settings=None,
        notify=lambda person, step: sent.append((person, step["level"])),
    )


def test_unacknowledged_p0_escalates_at_15_minutes_to_the_secondary_and_is_recorded(incident_db: Any) -> None:
    from toilless.incidents import store

    rotation = parse_rotation(
        {**ROTATION, "weeks": [dict(ROTATION["weeks"][0], week_of=_monday(-1).date().isoformat())]}
    )
    opened = _monday() + timedelta(days=2, hours=10)  # a Wednesday of this week
    sent: list[tuple[str, int]] = []
    with time_machine.travel(opened, tick=False) as clock:
        _open_incident("aa01", "P0", opened)
        clock.move_to(opened + timedelta(minutes=14, seconds=59))
        assert _sweep(incident_db, rotation, sent) == []
        clock.move_to(opened + timedelta(minutes=15))
        [step] = _sweep(incident_db, rotation, sent)
        assert (step["role"], step["person"], step["level"]) == ("secondary", "bob", 1)
        assert _sweep(incident_db, rotation, sent) == []  # the same step is never paged twice
        clock.move_to(opened + timedelta(minutes=30))
        [step] = _sweep(incident_db, rotation, sent)
        assert (step["role"], step["person"]) == ("tertiary", "carol")
    assert sent == [("bob", 1), ("carol", 2)]
    escalations = [item for item in store.timeline(incident_db, "aa01") if item["kind"] == "escalated"]
    assert [item["data"]["person"] for item in escalations] == ["bob", "carol"]
    assert escalations[0]["at"] == (opened + timedelta(minutes=15)).timestamp()


def test_acknowledged_p0_does_not_escalate(incident_db: Any) -> None:
    from toilless.incidents import acknowledge

    rotation = parse_rotation(ROTATION | {"repeat": True})
    opened = _monday() + timedelta(days=1, hours=3)
    sent: list[tuple[str, int]] = []
    with time_machine.travel(opened, tick=False) as clock:
        _open_incident("aa02", "P0", opened)
        clock.move_to(opened + timedelta(minutes=4))
        answer = acknowledge("aa02", "alice", "rest")
        assert answer["acknowledged_by"] == "alice"
        assert answer["already"] is False
        clock.move_to(opened + timedelta(hours=2))
        assert _sweep(incident_db, rotation, sent) == []
    assert sent == []


@pytest.mark.parametrize(
    ("severity", "minutes", "expected"),
    [
        pytest.param("P1", 59, None, id="p1-before-an-hour"),
        pytest.param("P1", 60, 1, id="p1-at-an-hour"),
        pytest.param("P2", 240, 1, id="p2-at-four-hours"),
        pytest.param("P3", 1439, None, id="p3-before-a-day"),
        pytest.param("P0", 600, 3, id="p0-tops-out-at-the-manager"),
    ],
)
def test_due_level_follows_the_severity_targets(severity: str, minutes: int, expected: int | None) -> None:
    from toilless.incidents.escalation import due_level

    opened = datetime(2026, 1, 5, tzinfo=UTC)
    row = {"opened_at": opened.timestamp(), "severity": severity, "escalation_level": 0}
    assert due_level(row, opened + timedelta(minutes=minutes)) == expected


def test_severity_targets_match_the_sops() -> None:
    assert [(t.respond, t.escalate) for t in (targets(code) for code in ("P0", "P1", "P2", "P3"))] == [
        (timedelta(minutes=5), timedelta(minutes=15)),
        (timedelta(minutes=15), timedelta(hours=1)),
        (timedelta(hours=1), timedelta(hours=4)),
        (timedelta(hours=4), timedelta(hours=24)),
    ]


@pytest.mark.parametrize("value", ["P4", "p-1", "critical", "", None, 0])
def test_severity_outside_p0_p3_is_a_clear_error(value: Any) -> None:
    with pytest.raises(InvalidSeverity, match="not one of P0, P1, P2, P3"):
        parse_severity(value)


def test_rotation_with_a_gap_is_refused_at_load() -> None:
    weeks = [dict(ROTATION["weeks"][0]), dict(ROTATION["weeks"][1], week_of="2026-12-14")]
    with pytest.raises(RotationError, match="gap: nobody is on call from 2026-12-07 to 2026-12-13"):
        parse_rotation({**ROTATION, "weeks": weeks})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"week_of": "2026-12-01"}, "handovers are on Mondays", id="not-a-monday"),
        pytest.param({"week_of": "2026-11-30"}, "overlaps", id="overlap"),
        pytest.param({"tertiary": ""}, "has no tertiary", id="missing-role"),
        pytest.param({"week_of": "soon"}, "is not a date", id="bad-date"),
    ],
)
def test_malformed_rotation_is_refused(change: dict[str, str], message: str) -> None:
    weeks = [dict(ROTATION["weeks"][0]), dict(ROTATION["weeks"][1], **change)]
    with pytest.raises(RotationError, match=message):
        parse_rotation({**ROTATION, "weeks": weeks})


def test_rotation_hands_over_on_monday_at_midnight_utc_and_repeats() -> None:
    rotation = parse_rotation(ROTATION)
    assert rotation.week_at(datetime(2026, 12, 6, 23, 59, tzinfo=UTC)).primary == "alice"
    assert rotation.week_at(datetime(2026, 12, 7, 0, 0, tzinfo=UTC)).primary == "bob"
    assert rotation.week_at(datetime(2026, 12, 14, tzinfo=UTC)).primary == "alice"  # repeat
    with pytest.raises(RotationError, match="nobody is on call"):
        rotation.week_at(datetime(2026, 11, 29, tzinfo=UTC))
    with pytest.raises(RotationError, match="ends with the week of 2026-12-07"):
        parse_rotation(ROTATION | {"repeat": False}).week_at(datetime(2026, 12, 14, tzinfo=UTC))


def test_shipped_rotation_loads() -> None:
    rotation = load_rotation(REPO / "include" / "oncall_rotation.yaml")
    assert [role for role, _ in rotation.ladder(datetime.now(UTC))] == [
        "primary",
        "secondary",
        "tertiary",
        "engineering_manager",
    ]


# -- REST ----------------------------------------------------------------------------------------------------------
def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {INTAKE_TOKEN}"}


def test_rest_ack_of_an_incident_the_intake_opened(intake: Any, incident_db: Any) -> None:
    from toilless.incidents import store

    fired = make_alert(fingerprint="0badc0de0001", instance="db-1", environment="prod", severity="critical")
    decided = intake.post_decided(make_payload(fired))
    assert decided.decided["counts"] == {"started": 1}, decided.decided
    incident_id = ev.incident_key("0badc0de0001", fired["startsAt"])
    row = store.get_incident(incident_db, incident_id)
    assert row is not None
    assert row["severity"] == "P0"
    assert row["dag_id"] == "test.alert_intake_target"
    response = intake.client.post(f"/incidents/{incident_id}/ack", json={"by": "alice", "via": "rest"}, headers=_auth())
    assert response.status_code == 200, response.text
    assert response.json()["acknowledged_by"] == "alice"
    again = intake.client.post(f"/incidents/{incident_id}/ack", json={"by": "bob"}, headers=_auth())
    assert again.json()["already"] is True
    assert again.json()["acknowledged_by"] == "alice"
    shown = intake.client.get(f"/incidents/{incident_id}", headers=_auth()).json()
    kinds = [item["kind"] for item in shown["timeline"]]
    assert kinds == ["alert_received", "severity_set", "runbook_started", "acknowledged"]
    # The same delivery again (Alertmanager retry): nothing new on the timeline.
    intake.post_decided(make_payload(fired))
    assert len(store.timeline(incident_db, incident_id)) == 4


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "detail"),
    [
        pytest.param("/incidents/deadbeef/ack", {"by": "alice"}, _auth(), 404, "no incident 'deadbeef'", id="unknown"),
        pytest.param("/incidents/not-hex!/ack", {"by": "alice"}, _auth(), 404, "no incident", id="malformed-id"),
        pytest.param("/incidents/deadbeef/ack", {"by": "alice"}, {}, 401, "credentials", id="no-credentials"),
        pytest.param(
            "/incidents/deadbeef/ack",
            {"by": "alice"},
            {"Authorization": "Basic " + base64.b64encode(b"alertmanager:wrong").decode()},
            401,
            "credentials",
            id="wrong-password",
        ),
        pytest.param("/incidents/deadbeef/ack", {"who": "alice"}, _auth(), 422, '"by"', id="no-by"),
    ],
)
def test_rest_ack_bad_input(
    intake: Any, incident_db: Any, path: str, body: dict[str, Any], headers: dict[str, str], status: int, detail: str
) -> None:
    response = intake.client.post(path, json=body, headers=headers)
    assert response.status_code == status, response.text
    assert detail in response.json()["detail"]


def test_ack_refuses_a_malformed_actor_or_channel(incident_db: Any) -> None:
    from toilless.incidents import acknowledge

    _open_incident("aa03", "P2", datetime.now(UTC))
    with pytest.raises(ev.IncidentError, match="'by'"):
        acknowledge("aa03", "<!channel>", "rest")
    with pytest.raises(ev.IncidentError, match="'via'"):
        acknowledge("aa03", "alice", "carrier-pigeon")


def test_rest_severity_change_and_bad_severity(intake: Any, incident_db: Any) -> None:
    from toilless.incidents import store

    _open_incident("aa04", "P2", datetime.now(UTC))
    bad = intake.client.post("/incidents/aa04/severity", json={"severity": "P4", "by": "alice"}, headers=_auth())
    assert bad.status_code == 422
    assert "not one of P0, P1, P2, P3" in bad.json()["detail"]
    unknown = intake.client.post("/incidents/ffff/severity", json={"severity": "P1", "by": "alice"}, headers=_auth())
    assert unknown.status_code == 404
    good = intake.client.post("/incidents/aa04/severity", json={"severity": "p0", "by": "alice"}, headers=_auth())
    assert good.status_code == 200, good.text
    assert good.json() == {"incident_id": "aa04", "severity": "P0", "was": "P2"}
    assert store.get_incident(incident_db, "aa04")["severity"] == "P0"
    [changed] = [item for item in store.timeline(incident_db, "aa04") if item["kind"] == "severity_set"]
    assert changed["actor"] == "alice"


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        pytest.param("prod", 1, id="prod-escalates"),
        pytest.param("staging", None, id="staging-waits-for-working-hours"),
        pytest.param("", 1, id="unknown-environment-escalates"),
    ],
)
def test_only_prod_incidents_climb_the_ladder(environment: str, expected: int | None) -> None:
    from toilless.incidents.escalation import due_level

    opened = datetime(2026, 1, 5, tzinfo=UTC)
    row = {"opened_at": opened.timestamp(), "severity": "P0", "escalation_level": 0, "environment": environment}
    settings = {"escalate_environments": ["prod", "production"]}
    assert due_level(row, opened + timedelta(minutes=15), settings) == expected
