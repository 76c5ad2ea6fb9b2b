"""The Silence 1h / 4h buttons of an incident message silence its alert in a real Alertmanager: matchers exactly
the alert's labels, at most the configured maximum, once per incident and duration, listed with the silences
Toilless created and on the incident's timeline; a presser who is not a respondent is refused."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.incidents.conftest import alert, incident_db  # noqa: F401 (fixture)
from tests.slack_actions.conftest import ALICE, MALLORY, SECRET
from toilless.incidents import events as ev
from toilless.slack_actions import buttons
from toilless.slack_actions.press import payload_for, signed_request

pytestmark = pytest.mark.integration


@pytest.fixture
def incident(
    incident_db: Any,  # noqa: F811 (fixture)
    airflow_db: Any,
    alertmanager_server: Any,
    set_connection: Callable[[str, dict[str, Any]], None],
) -> tuple[str, dict[str, str]]:
    """An incident the intake recorded (with the alert's labels), and Alertmanager where triage silences."""
    from toilless.incidents import record

    set_connection("alertmanager_default", {"conn_type": "http", "host": alertmanager_server.url})
    labels = {"alertname": "DiskFull", "service": f"svc-{uuid.uuid4().hex[:8]}", "severity": "critical"}
    conf_alert = alert(fingerprint=uuid.uuid4().hex[:16], **labels)
    record(ev.ALERT_RECEIVED, alert=conf_alert, actor="alertmanager", data={"labels": labels, "alertname": "DiskFull"})
    return ev.incident_of_alert(conf_alert), labels


def press_silence(client: Any, incident_id: str, label: str, *, user: str = ALICE) -> Any:
    block = buttons.actions_block(buttons.incident_buttons(incident_id, alertmanager=True))
    element = next(e for e in block["elements"] if e["text"]["text"] == label)
    found = {"label": label, "action_id": element["action_id"], "value": element["value"]}
    payload = payload_for(found, message={"ts": "1.2", "blocks": [block]}, channel="C1", user_id=user)
    body, headers = signed_request(SECRET, payload)
    return client.post("/toilless/slack/actions", content=body, headers=headers)


def held(alertmanager_server: Any, service: str) -> list[dict[str, Any]]:
    return [
        s
        for s in alertmanager_server.silences()
        if s["status"]["state"] == "active" and any(m["value"] == service for m in s["matchers"])
    ]


def toilless_silences() -> dict[str, Any]:
    from airflow.models.variable import Variable

    from toilless.sops.triage_alert.steps import SILENCES_STATE_KEY

    return json.loads(Variable.get(SILENCES_STATE_KEY, default_var="{}"))


def test_pressing_silence_twice_creates_one_silence_of_exactly_the_alerts_labels(
    client: Any,
    incident: tuple[str, dict[str, str]],
    alertmanager_server: Any,
    incident_db: Any,  # noqa: F811
) -> None:
    from toilless.incidents import store

    incident_id, labels = incident
    first = press_silence(client, incident_id, "Silence 1h")
    again = press_silence(client, incident_id, "Silence 1h")

    assert (first.status_code, first.json()["outcome"]) == (200, "decided")
    assert (again.status_code, again.json()["outcome"]) == (200, "already_decided")
    [silence] = held(alertmanager_server, labels["service"])
    assert {(m["name"], m["value"], m["isRegex"], m["isEqual"]) for m in silence["matchers"]} == {
        (name, value, False, True) for name, value in labels.items()
    }
    assert silence["createdBy"].startswith("alice")
    assert incident_id in silence["comment"]
    # Listed with the silences Toilless created (the handoff's list; expirable by id).
    entry = toilless_silences()[silence["id"]]
    assert entry["incident_id"] == incident_id
    assert entry["matchers"] == labels
    # On the incident's timeline, once, as alice's action.
    actions = [item for item in store.timeline(incident_db, incident_id) if item["kind"] == ev.ACTION]
    assert [(item["actor"], item["summary"]) for item in actions] == [("alice", "silence 1h on DiskFull: done")]
    assert actions[0]["data"]["silence_id"] == silence["id"]


def test_4h_is_its_own_silence_and_two_presses_at_once_make_one(
    client: Any, incident: tuple[str, dict[str, str]], alertmanager_server: Any
) -> None:
    from toilless.sops.triage_alert import server

    incident_id, labels = incident
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: server.silence_incident(incident_id, 4, by="carol"), range(4)))
    assert sorted(result["already"] for result in results) == [False, True, True, True]
    assert len({result["silence_id"] for result in results}) == 1
    assert press_silence(client, incident_id, "Silence 1h").json()["outcome"] == "decided"
    assert len(held(alertmanager_server, labels["service"])) == 2


def test_a_presser_who_is_not_a_respondent_silences_nothing(
    client: Any, incident: tuple[str, dict[str, str]], alertmanager_server: Any
) -> None:
    incident_id, labels = incident
    response = press_silence(client, incident_id, "Silence 1h", user=MALLORY)
    assert response.status_code == 403
    assert held(alertmanager_server, labels["service"]) == []


def test_a_silence_over_the_configured_maximum_is_refused(
    client: Any,
    incident: tuple[str, dict[str, str]],
    alertmanager_server: Any,
    set_variable: Callable[[str, Any], None],
) -> None:
    set_variable("toilless_triage_alert", {"max_silence_minutes": 120})
    incident_id, labels = incident
    response = press_silence(client, incident_id, "Silence 4h")
    assert response.status_code == 422
    assert "over the configured maximum" in response.json()["text"]
    assert held(alertmanager_server, labels["service"]) == []


def test_an_unknown_incident_is_a_clear_404(client: Any, incident: tuple[str, dict[str, str]]) -> None:
    response = press_silence(client, "0123456789abcdef0123", "Silence 1h")
    assert response.status_code == 404
    assert "no incident" in response.json()["text"]


def test_the_loop_intake_ack_button_press_silence_then_rest_expiry(
    intake: Any,
    client: Any,
    incident_db: Any,  # noqa: F811 (fixture)
    airflow_db: Any,
    alertmanager_server: Any,
    set_connection: Callable[[str, dict[str, Any]], None],
) -> None:
    """The intake's ack carries the buttons; pressing Silence 4h silences the alert; the REST call expires it early
    (the path the weekly handoff names); both are on the incident's timeline."""
    from tests.fixtures.alert_intake import INTAKE_TOKEN, make_alert, make_payload
    from toilless.incidents import store

    set_connection("alertmanager_default", {"conn_type": "http", "host": alertmanager_server.url})
    instance = f"db-{uuid.uuid4().hex[:8]}"
    fired = make_alert(fingerprint=uuid.uuid4().hex[:12], instance=instance, environment="prod", severity="critical")
    assert intake.post_decided(make_payload(fired)).decided["counts"] == {"started": 1}
    intake.deliver()
    incident_id = ev.incident_key(fired["fingerprint"], fired["startsAt"])
    [ack] = [m for m in intake.slack_sink.messages() if incident_id in json.dumps(m.get("blocks", []))]
    [block] = [b for b in ack["blocks"] if b["type"] == "actions"]
    element = next(e for e in block["elements"] if e["text"]["text"] == "Silence 4h")

    found = {"label": "Silence 4h", "action_id": element["action_id"], "value": element["value"]}
    payload = payload_for(found, message={"ts": "9.9", "blocks": ack["blocks"]}, channel="C1", user_id=ALICE)
    body, headers = signed_request(SECRET, payload)
    pressed = client.post("/toilless/slack/actions", content=body, headers=headers)
    assert pressed.json()["outcome"] == "decided", pressed.text
    [silence] = held(alertmanager_server, instance)
    assert {m["name"]: m["value"] for m in silence["matchers"]} == fired["labels"]

    expired = intake.client.post(
        f"/incidents/silences/{silence['id']}/expire",
        json={"by": "bob"},
        headers={"Authorization": f"Bearer {INTAKE_TOKEN}"},
    )
    assert expired.status_code == 200, expired.text
    assert held(alertmanager_server, instance) == []
    assert toilless_silences()[silence["id"]]["expiredBy"] == "bob"
    actions = [(e["actor"], e["summary"]) for e in store.timeline(incident_db, incident_id) if e["kind"] == ev.ACTION]
    assert actions == [("alice", "silence 4h on TestDiskFull: done"), ("bob", "expire silence on TestDiskFull: done")]
    unknown = intake.client.post(
        f"/incidents/silences/{uuid.uuid4()}/expire",
        json={"by": "bob"},
        headers={"Authorization": f"Bearer {INTAKE_TOKEN}"},
    )
    assert unknown.status_code == 404
