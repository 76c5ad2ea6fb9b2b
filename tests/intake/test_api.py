"""The alert intake app in-process (FastAPI TestClient) against a real metadata DB, real Params validation and the
Slack sink: every refusal starts nothing; a firing alert starts one run, once, whatever the deliveries."""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import UTC, datetime

import pytest

from tests.fixtures.alert_intake import INTAKE_TOKEN, IntakeHarness, make_alert, make_payload

pytestmark = pytest.mark.integration

PROD_DISK = {"instance": "db-1", "environment": "prod", "severity": "critical", "service": "orders"}


def _assert_nothing_started(intake: IntakeHarness) -> None:
    assert intake.runs() == []
    intake.deliver()
    texts = [m["text"] for m in intake.slack_sink.messages()]
    assert not any("runbook started" in text for text in texts), texts


# -- refusals -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-credentials"),
        pytest.param({"Authorization": "Bearer wrong-token"}, id="wrong-bearer"),
        pytest.param({"Authorization": f"Bearer {INTAKE_TOKEN}x"}, id="token-with-suffix"),
        pytest.param({"Authorization": f"Token {INTAKE_TOKEN}"}, id="unknown-scheme"),
        pytest.param(
            {"Authorization": "Basic " + base64.b64encode(f"someone:{INTAKE_TOKEN}".encode()).decode()},
            id="basic-wrong-user",
        ),
        pytest.param({"Authorization": "Basic !!!notbase64"}, id="basic-garbage"),
    ],
)
def test_bad_credentials_get_401_and_start_nothing(
    intake: IntakeHarness, headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    response = intake.post_decided(make_payload(make_alert(**PROD_DISK)), token=None, headers=headers)

    assert response.status_code == 401
    assert "Bearer" in response.headers["www-authenticate"]
    assert intake.outbox_size() == 0
    _assert_nothing_started(intake)
    assert INTAKE_TOKEN not in caplog.text


def test_basic_auth_with_the_connection_login_is_accepted(intake: IntakeHarness) -> None:
    basic = base64.b64encode(f"alertmanager:{INTAKE_TOKEN}".encode()).decode()
    response = intake.post_decided(
        make_payload(make_alert(**PROD_DISK)), token=None, headers={"Authorization": f"Basic {basic}"}
    )

    assert response.status_code == 200, response.text
    assert response.json()["counts"] == {"started": 1}


def test_missing_credentials_connection_is_503_so_alertmanager_retries(
    intake: IntakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_TOILLESS_ALERT_INTAKE")

    response = intake.post_decided(make_payload(make_alert(**PROD_DISK)))

    assert response.status_code == 503
    assert "credentials" in response.json()["detail"]
    _assert_nothing_started(intake)


def test_malformed_json_is_400(intake: IntakeHarness) -> None:
    response = intake.post_decided(b'{"version": "4", "alerts": [')

    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]
    _assert_nothing_started(intake)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({"alerts": []}, "version", id="no-version"),
        pytest.param({**make_payload(make_alert(**PROD_DISK)), "version": "3"}, "version", id="version-3"),
        pytest.param({**make_payload(make_alert(**PROD_DISK)), "alerts": []}, "alerts", id="no-alerts"),
        pytest.param(
            make_payload({**make_alert(**PROD_DISK), "labels": {"instance": "db-1"}}), "alertname", id="no-alertname"
        ),
        pytest.param(make_payload({**make_alert(**PROD_DISK), "startsAt": "yesterday"}), "startsAt", id="bad-time"),
        pytest.param(make_payload({**make_alert(**PROD_DISK), "fingerprint": ""}), "fingerprint", id="no-fingerprint"),
        pytest.param([1, 2, 3], "body", id="not-an-object"),
    ],
)
def test_wrong_schema_is_422_saying_what_is_wrong(intake: IntakeHarness, body: object, expected: str) -> None:
    response = intake.post_decided(body)

    assert response.status_code == 422
    answer = response.json()
    assert "Alertmanager" in answer["detail"]
    assert any(expected in error for error in answer["errors"]), answer
    _assert_nothing_started(intake)


def test_oversized_payload_is_413_before_parsing(intake: IntakeHarness) -> None:
    huge = make_payload(make_alert(**PROD_DISK))
    huge["commonAnnotations"] = {"padding": "x" * (1024 * 1024)}

    response = intake.post_decided(huge)

    assert response.status_code == 413
    _assert_nothing_started(intake)


def test_oversized_chunked_payload_without_length_is_413(intake: IntakeHarness) -> None:
    def chunks():
        yield b'{"version": "4", "padding": "'
        for _ in range(300):
            yield b"y" * 4096
        yield b'"}'

    response = intake.client.post(
        "/alertmanager", content=chunks(), headers={"Authorization": f"Bearer {INTAKE_TOKEN}"}
    )

    assert response.status_code == 413
    _assert_nothing_started(intake)


def test_conf_failing_params_is_422_and_no_alert_of_the_payload_starts(intake: IntakeHarness) -> None:
    good = make_alert(**PROD_DISK)
    bad = make_alert("TestBadCount", fingerprint="bbbbbbbbbbbbbbbb", instance="db-2", count="many")

    response = intake.post_decided(make_payload(good, bad))

    assert response.status_code == 422
    errors = response.json()["errors"]
    assert len(errors) == 1
    assert "TestBadCount" in errors[0]
    assert "Params" in errors[0]
    assert "count" in errors[0]
    _assert_nothing_started(intake)
    # Alertmanager drops a 4xx notification: a person is told, urgently since one alert is prod.
    refused = intake.slack_sink.messages("urgent")
    assert any("refused" in message["text"] and "TestBadCount" in message["text"] for message in refused)


def test_alert_missing_its_target_label_is_422(intake: IntakeHarness) -> None:
    response = intake.post_decided(make_payload(make_alert(environment="prod")))

    assert response.status_code == 422
    assert "target label" in response.json()["errors"][0]
    _assert_nothing_started(intake)


def test_route_to_a_dag_airflow_does_not_know_is_acked_missing_not_retried(intake: IntakeHarness) -> None:
    # A 503 would have Alertmanager retry forever (a typo in a route never heals); the alert is answered instead,
    # and its next notification starts it once the DAG exists (tests/intake/test_input.py).
    response = intake.post_decided(make_payload(make_alert("TestMissingDag")))

    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert result["status"] == "missing"
    assert "test.no_such_dag is not known to Airflow" in result["detail"]
    _assert_nothing_started(intake)


# -- no runbook ---------------------------------------------------------------------------------------------------
def test_unknown_alertname_is_acknowledged_as_no_runbook_once(intake: IntakeHarness) -> None:
    alert = make_alert("SomethingElseBroke", environment="staging", severity="warning", instance="web-3")

    first = intake.post_decided(make_payload(alert))
    second = intake.post_decided(make_payload(alert))

    assert first.status_code == 200
    assert first.json()["results"][0]["status"] == "no_runbook"
    assert second.json()["results"][0]["status"] == "duplicate"
    assert intake.runs() == []
    intake.deliver()
    messages = intake.slack_sink.messages("non_urgent")
    assert len(messages) == 1
    assert "no runbook" in messages[0]["text"]
    assert "P2" in messages[0]["text"]
    assert "instance=web-3" in messages[0]["text"]
    assert "SomethingElseBroke on web-3" in messages[0]["text"]


# -- starting runs --------------------------------------------------------------------------------------------------
def test_firing_alert_starts_one_run_with_the_alert_as_conf_and_acks_in_urgent(intake: IntakeHarness) -> None:
    response = intake.post_decided(make_payload(make_alert(**PROD_DISK)))

    assert response.status_code == 200
    result = response.json()["results"][0]
    assert result["status"] == "started"
    [(run_id, conf, state)] = intake.runs()
    assert run_id == result["run_id"]
    assert run_id.startswith("alert__TestDiskFull__instance-db-1__")
    assert state == "queued"
    assert conf["instance_ids"] == ["db-1"]
    assert conf["dry_run"] is False
    assert conf["alert"]["labels"] == {"alertname": "TestDiskFull", **PROD_DISK}
    assert conf["alert"]["fingerprint"] == "a1b2c3d4e5f60718"
    assert conf["alert"]["startsAt"] == "2026-11-24T11:58:00.123456Z"
    assert conf["alert"]["externalURL"] == "http://alertmanager.local:9093"
    assert conf["alert"]["generatorURL"].startswith("http://prometheus.local/")

    # The ack goes out after the HTTP answer (outbox), to the urgent channel because the environment is prod.
    assert intake.outbox_size() == 1
    assert intake.deliver() == (0, 1)
    [ack] = intake.slack_sink.messages("urgent")
    assert "P0" in ack["text"]
    assert "respond within 5 min, escalate after 15 min" in ack["text"]
    assert f"/dags/test.alert_intake_target/runs/{run_id}" in ack["text"]
    # Configured hosts are links (Slack writes "&" in a link as "&amp;"); others, like the test's Alertmanager,
    # are inert text.
    assert "<https://grafana.example.com/d/service-overview?var-env=prod&amp;var-service=orders|Grafana>" in ack["text"]
    assert "<https://kibana.example.com/" in ack["text"]  # prod log link
    assert "silences/new" in ack["text"]
    assert "<http://alertmanager.local" not in ack["text"]
    assert intake.slack_sink.messages("non_urgent") == []


def test_repeated_and_concurrent_deliveries_start_one_run(intake: IntakeHarness) -> None:
    payload = make_payload(make_alert(**PROD_DISK))
    statuses: list[str] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            answer = intake.post_decided(payload)
            assert answer.status_code == 200, answer.text
            statuses.append(answer.json()["results"][0]["status"])
        except BaseException as err:  # collected and re-raised in the main thread
            errors.append(err)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    repeat = intake.post_decided(payload)  # Alertmanager's repeat_interval re-send

    assert not errors, errors
    assert sorted(statuses) == ["duplicate"] * 7 + ["started"]
    assert repeat.json()["results"][0]["status"] == "duplicate"
    assert len(intake.runs()) == 1
    intake.deliver()
    assert len(intake.slack_sink.messages("urgent")) == 1


def test_second_alert_for_a_busy_target_is_skipped_and_starts_after_it_is_free(intake: IntakeHarness) -> None:
    intake.post_decided(make_payload(make_alert(**PROD_DISK)))
    [(first_run, _, _)] = intake.runs()
    other = make_alert(fingerprint="ffffffffffffffff", starts_at="2026-11-24T11:59:00Z", **PROD_DISK)

    busy = intake.post_decided(make_payload(other))

    assert busy.json()["results"][0]["status"] == "skipped"
    assert len(intake.runs()) == 1
    intake.deliver()
    skipped = [m for m in intake.slack_sink.messages("urgent") if "not started" in m["text"]]
    assert len(skipped) == 1
    assert first_run in skipped[0]["text"]
    # A different target is independent.
    elsewhere = intake.post_decided(
        make_payload(make_alert(fingerprint="cccccccccccccccc", **{**PROD_DISK, "instance": "db-9"}))
    )
    assert elsewhere.json()["results"][0]["status"] == "started"
    # Once the first run ended, a new firing alert for the target starts again; the skipped one stays skipped.
    intake.set_run_state(first_run, "success")
    third = make_alert(fingerprint="dddddddddddddddd", starts_at="2026-11-24T12:30:00Z", **PROD_DISK)
    assert intake.post_decided(make_payload(third)).json()["results"][0]["status"] == "started"
    assert intake.post_decided(make_payload(other)).json()["results"][0]["status"] == "duplicate"
    assert len(intake.runs()) == 3


def test_queue_policy_starts_the_queued_alert_when_the_target_is_free(intake: IntakeHarness) -> None:
    first = make_alert("TestQueueFull", instance="q-1", environment="staging")
    second = make_alert("TestQueueFull", fingerprint="9999999999999999", instance="q-1", environment="staging")
    intake.post_decided(make_payload(first))
    [(first_run, _, _)] = intake.runs()

    queued = intake.post_decided(make_payload(second)).json()["results"][0]

    assert queued["status"] == "queued"
    assert intake.deliver()[0] == 0  # target still busy: nothing starts
    assert len(intake.runs()) == 1
    intake.set_run_state(first_run, "failed")
    started, _ = intake.deliver()
    assert started == 1
    runs = intake.runs()
    assert [run_id for run_id, _, _ in runs] == [first_run, queued["run_id"]]
    assert runs[1][1]["alert"]["fingerprint"] == "9999999999999999"
    intake.deliver()
    assert any("queued runbook started" in m["text"] for m in intake.slack_sink.messages("non_urgent"))
    # A re-send of the queued alert now finds it started.
    assert intake.post_decided(make_payload(second)).json()["results"][0]["status"] == "duplicate"


# -- resolved -------------------------------------------------------------------------------------------------------
def test_resolved_alert_starts_nothing(intake: IntakeHarness) -> None:
    response = intake.post_decided(make_payload(make_alert(status="resolved", **PROD_DISK)))

    assert response.status_code == 200
    assert response.json()["results"][0]["status"] == "resolved"
    _assert_nothing_started(intake)
    assert intake.slack_sink.messages() == []


def test_resolved_while_its_run_is_going_is_said_in_slack_once(intake: IntakeHarness) -> None:
    intake.post_decided(make_payload(make_alert(**PROD_DISK)))
    [(run_id, _, _)] = intake.runs()
    intake.set_run_state(run_id, "running")
    resolved = make_payload(make_alert(status="resolved", **PROD_DISK))

    first = intake.post_decided(resolved)
    again = intake.post_decided(resolved)

    assert first.json()["results"][0]["status"] == "resolved"
    assert run_id in first.json()["results"][0]["detail"]
    assert len(intake.runs()) == 1
    intake.deliver()
    notes = [m for m in intake.slack_sink.messages("urgent") if "resolved" in m["text"].splitlines()[0]]
    assert len(notes) == 1
    assert run_id in notes[0]["text"]
    assert "still running" in notes[0]["text"]
    assert again.json()["results"][0]["detail"] == "already noted"


def test_resolved_before_a_queued_run_started_cancels_it(intake: IntakeHarness) -> None:
    intake.post_decided(make_payload(make_alert("TestQueueFull", instance="q-2", environment="staging")))
    waiting = make_alert("TestQueueFull", fingerprint="7777777777777777", instance="q-2", environment="staging")
    intake.post_decided(make_payload(waiting))
    [(first_run, _, _)] = intake.runs()

    intake.post_decided(make_payload({**waiting, "status": "resolved"}))
    intake.set_run_state(first_run, "success")

    assert intake.deliver()[0] == 0
    assert len(intake.runs()) == 1


# -- maintenance window --------------------------------------------------------------------------------------------
def test_inside_the_maintenance_window_runs_start_dry_and_the_ack_says_so(intake: IntakeHarness) -> None:
    intake.now = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)  # Sunday 03:00 UTC

    result = intake.post_decided(make_payload(make_alert(**PROD_DISK))).json()["results"][0]

    assert result["status"] == "started"
    [(_, conf, _)] = intake.runs()
    assert conf["dry_run"] is True
    intake.deliver()
    [ack] = intake.slack_sink.messages("urgent")
    assert "maintenance window" in ack["text"]
    assert "dry run" in ack["text"]


def test_notify_only_route_inside_the_window_starts_nothing(intake: IntakeHarness) -> None:
    intake.now = datetime(2026, 11, 22, 2, 30, tzinfo=UTC)

    result = intake.post_decided(make_payload(make_alert("TestNotifyOnly", instance="n-1"))).json()["results"][0]

    assert result["status"] == "notify_only"
    assert intake.runs() == []
    intake.deliver()
    assert any("notify only" in m["text"] for m in intake.slack_sink.messages("non_urgent"))


# -- Slack outages --------------------------------------------------------------------------------------------------
def test_acks_survive_a_slack_outage(intake: IntakeHarness) -> None:
    intake.slack_sink.fail_with_status = 500
    intake.post_decided(make_payload(make_alert(**PROD_DISK)))

    assert intake.deliver() == (0, 0)
    assert intake.outbox_size() == 1
    intake.slack_sink.fail_with_status = None
    from airflow.utils.session import create_session
    from sqlalchemy import update

    from toilless.intake.store import outbox

    with create_session() as session:  # skip the backoff instead of sleeping through it
        session.execute(update(outbox).values(claimed_until=None))
    assert intake.deliver() == (0, 1)
    assert intake.outbox_size() == 0
    assert len(intake.slack_sink.messages("urgent")) == 1


def test_response_lists_every_alert_of_a_group(intake: IntakeHarness) -> None:
    alerts = [make_alert(fingerprint=f"{index:016x}", **{**PROD_DISK, "instance": f"db-{index}"}) for index in range(5)]
    alerts.append(make_alert("NoSuchRunbook", fingerprint="eeeeeeeeeeeeeeee"))

    answer = intake.post_decided(make_payload(*alerts)).json()

    assert answer["counts"] == {"started": 5, "no_runbook": 1}
    assert len(intake.runs()) == 5
    assert json.dumps(answer).count("alert__TestDiskFull__instance-db-") == 5


def test_two_intake_processes_racing_on_one_target_start_one_run(intake: IntakeHarness) -> None:
    """As two API-server workers would: separate services (no shared in-process lock), same DB, same moment.

    Each accepts the same firing alert (HA duplicate) and a different alert for the same target, then all four
    drain the inbox at once: the deliveries overlap (SQLite has no SKIP LOCKED), the ledger decides once.
    """
    from tests.fixtures.alert_intake import TEST_ROUTES
    from toilless.intake.models import WebhookPayload
    from toilless.intake.service import IntakeService, SettingsProvider

    services = [
        IntakeService(SettingsProvider(ttl=0, routes_path=TEST_ROUTES), clock=lambda: intake.now) for _ in range(4)
    ]
    bodies = [
        make_payload(make_alert(**PROD_DISK)),
        make_payload(make_alert(fingerprint="1212121212121212", **PROD_DISK)),
    ]
    deliveries = [
        service.accept(WebhookPayload.model_validate(body), body)["delivery"] for service in services for body in bodies
    ]
    assert intake.runs() == []  # accepted, not decided yet
    barrier = threading.Barrier(len(services))
    errors: list[BaseException] = []

    def drain(service: IntakeService) -> None:
        try:
            barrier.wait(10)
            deadline = time.monotonic() + 60
            while intake.inbox_size(pending_only=True) and time.monotonic() < deadline:
                service.drain_inbox()
                time.sleep(0.05)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=drain, args=(service,)) for service in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)

    assert not errors, errors
    decided = [intake.service.delivery(delivery) for delivery in deliveries]
    assert all(answer is not None and answer["status"] == "done" for answer in decided), decided
    statuses = [answer["results"][0]["status"] for answer in decided if answer]
    assert statuses.count("started") == 1, statuses
    assert set(statuses) <= {"started", "duplicate", "skipped"}
    assert len(intake.runs()) == 1


def test_old_decisions_are_forgotten_but_queued_ones_kept(intake: IntakeHarness) -> None:
    from airflow.utils.session import create_session
    from sqlalchemy import select, update

    from toilless.intake.store import ledger
    from toilless.intake.worker import purge_ledger

    intake.post_decided(make_payload(make_alert("TestQueueFull", instance="q-9", environment="staging")))
    intake.post_decided(make_payload(make_alert("TestQueueFull", fingerprint="4444444444444444", instance="q-9")))
    intake.post_decided(make_payload(make_alert("NoRunbookHere", fingerprint="5555555555555555")))
    with create_session() as session:
        session.execute(update(ledger).values(updated_at=0.0))  # 1970: older than any retention

    assert purge_ledger(30) == 2

    with create_session() as session:
        left = session.execute(select(ledger.c.decision)).scalars().all()
    assert left == ["queued"]


def test_the_plugin_mounts_the_intake_at_toilless() -> None:
    from fastapi import FastAPI
    from toilless_plugin import ToillessPlugin

    [entry] = ToillessPlugin.fastapi_apps
    assert entry["url_prefix"] == "/toilless"
    assert isinstance(entry["app"], FastAPI)
    assert {"/alertmanager", "/health"} <= {route.path for route in entry["app"].routes}
    assert ToillessPlugin.fastapi_apps[0]["app"] is entry["app"]  # one app per process
