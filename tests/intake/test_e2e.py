"""End to end: a real Prometheus rule fires, a real Alertmanager delivers to the intake inside a real running Airflow
API server, and the routed SOP DAG gets exactly one run with the alert in its conf; the ack is in the Slack sink.
Repeats, a duplicate delivery and the resolved notification start nothing more."""

from __future__ import annotations

import concurrent.futures
import time
import uuid
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.integration

DAG_ID = "rds_storage_guard"
ALERTNAME = "RDSLowStorage"


def _alert_runs(live_airflow: Any, instance_id: str | None) -> list[dict[str, Any]]:
    """This test's alert runs (None: every instance's): other tests on the shared running Airflow alert about
    instances of their own."""
    response = live_airflow.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns", params={"limit": 100})
    response.raise_for_status()
    return [
        run
        for run in response.json()["dag_runs"]
        if run["dag_run_id"].startswith(f"alert__{ALERTNAME}__")
        and (
            instance_id is None
            or ((run.get("conf") or {}).get("alert") or {}).get("labels", {}).get("dbinstance_identifier")
            == instance_id
        )
    ]


def _wait_for_runs(live_airflow: Any, instance_id: str, count: int, timeout: float = 90.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = _alert_runs(live_airflow, instance_id)
        if len(runs) >= count:
            return runs
        time.sleep(0.5)
    raise TimeoutError(f"no run of {DAG_ID} from {ALERTNAME} after {timeout}s")


def test_prometheus_alert_starts_the_routed_dag_once(live_airflow: Any, alerting_stack: Any) -> None:
    intake = live_airflow.published["alert_intake"]
    intake_url = f"{live_airflow.base_url}{intake['path']}"
    # An instance of its own: the session's Airflow runs the sandbox's demo instance (orders-db) in other tests and
    # alerts, and a second run for it there is not this test's to count (a fresh-clone run once saw two).
    instance_id = f"e2e-intake-{uuid.uuid4().hex[:6]}"
    live_airflow.wait_for_dag(DAG_ID)
    rules = [
        {
            "alert": ALERTNAME,
            "expr": "toilless_e2e_rds_free_storage_pct < 10",
            "for": "0s",
            "labels": {"severity": "critical", "environment": "prod", "service": "orders"},
            "annotations": {"summary": "RDS {{ $labels.dbinstance_identifier }} has {{ $value }}% free storage"},
        }
    ]
    stack = alerting_stack(intake_url, intake["token"], rules)
    series = f'toilless_e2e_rds_free_storage_pct{{dbinstance_identifier="{instance_id}"}}'
    stack.exporter.values[series] = 4.0

    # Prometheus fires, Alertmanager delivers, the intake starts the run.
    [run] = _wait_for_runs(live_airflow, instance_id, 1)
    alert = run["conf"]["alert"]
    assert alert["alertname"] == ALERTNAME
    assert alert["labels"]["dbinstance_identifier"] == instance_id
    assert alert["labels"]["severity"] == "critical"
    assert alert["status"] == "firing"
    assert alert["externalURL"] == stack.alertmanager_url
    assert "annotations" in alert
    assert alert["annotations"]["summary"].startswith(f"RDS {instance_id} has 4")
    assert run["conf"]["instance_ids"] == [instance_id]
    assert isinstance(run["conf"]["dry_run"], bool)
    assert run["triggering_user_name"] == "toilless-alert-intake"

    # The acknowledgement: prod → urgent channel, P0, a link to the run.
    [ack] = live_airflow.slack_sink.wait_for(
        lambda m: m["channel"] == "urgent" and run["dag_run_id"] in m["text"] and "runbook started" in m["text"],
        timeout=60,
    )
    assert "P0" in ack["text"]
    assert run["dag_run_id"] in ack["text"]
    assert "silences/new" in ack["text"]

    # Alertmanager repeats the still-firing alert (repeat_interval 4 s): no second run.
    firing = stack.recorder.wait_for("firing", count=3, timeout=60)
    time.sleep(2)  # let the intake answer the last repeat
    assert len(_alert_runs(live_airflow, instance_id)) == 1

    # A duplicate delivery (as from a second Alertmanager replica), twice at the same moment: no second run.
    headers = {"Authorization": f"Bearer {intake['token']}"}
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(
            pool.map(lambda _: requests.post(intake_url, json=firing[0], headers=headers, timeout=30), [0, 1])
        )
    assert [answer.status_code for answer in answers] == [200, 200]
    assert {answer.json()["results"][0]["status"] for answer in answers} == {"accepted"}
    decided = [_decided(intake_url, headers, answer.json()["delivery"]) for answer in answers]
    assert {answer["results"][0]["status"] for answer in decided} == {"duplicate"}
    assert len(_alert_runs(live_airflow, instance_id)) == 1

    # Resolve: Prometheus stops firing, Alertmanager sends "resolved"; nothing new starts.
    stack.exporter.values[series] = 55.0
    [resolved, *_] = stack.recorder.wait_for("resolved", timeout=60)
    replay = requests.post(intake_url, json=resolved, headers=headers, timeout=30)
    assert replay.status_code == 200
    assert _decided(intake_url, headers, replay.json()["delivery"])["results"][0]["status"] == "resolved"
    time.sleep(2)
    assert len(_alert_runs(live_airflow, instance_id)) == 1
    # One ack for this alert's run (the incident live test acks RDSLowStorage runs of its own on this Airflow).
    acks = [m for m in live_airflow.slack_sink.messages() if "runbook started" in m["text"] and ALERTNAME in m["text"]]
    assert len([m for m in acks if run["dag_run_id"] in m["text"]]) == 1


def _decided(intake_url: str, headers: dict[str, str], delivery: int, timeout: float = 60.0) -> dict[str, Any]:
    """An accepted delivery once the intake's worker has decided it (GET /toilless/deliveries/{id})."""
    url = f"{intake_url.rsplit('/', 1)[0]}/deliveries/{delivery}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = requests.get(url, headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text
        if answer.json()["status"] == "done":
            return answer.json()
        time.sleep(0.5)
    raise AssertionError(f"delivery {delivery} was not decided within {timeout}s")


def test_intake_in_the_api_server_refuses_a_bad_token(live_airflow: Any) -> None:
    url = f"{live_airflow.base_url}{live_airflow.published['alert_intake']['path']}"
    before = len(_alert_runs(live_airflow, None))

    response = requests.post(url, json={"version": "4"}, headers={"Authorization": "Bearer nope"}, timeout=30)

    assert response.status_code == 401
    assert len(_alert_runs(live_airflow, None)) == before


def test_rest_api_example_client_starts_once_then_reports_already_started(
    live_airflow: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from scripts.trigger_runbook import main

    live_airflow.wait_for_dag("alert_intake_selftest")
    monkeypatch.setenv("AIRFLOW_PASSWORD", live_airflow.password)
    argv = [
        "--url",
        live_airflow.base_url,
        "--user",
        live_airflow.username,
        "--dag",
        "alert_intake_selftest",
        "--alertname",
        "ToillessIntakeSelfTest",
        "--fingerprint",
        "feedfacecafe0001",
        "--starts-at",
        "2026-11-22T03:30:00Z",
        "--label",
        "instance=rest-client",
        "--dry-run",
    ]

    first = main(argv)
    second = main(argv)

    assert (first, second) == (0, 3)
    output = capsys.readouterr().out
    run_id = output.split("run ", 1)[1].split(":", 1)[0]
    run = live_airflow.api("GET", f"/api/v2/dags/alert_intake_selftest/dagRuns/{run_id}").json()
    assert run["conf"]["alert"]["labels"]["instance"] == "rest-client"
    assert run["conf"]["dry_run"] is True
    assert "already started" in output
    # Bad conf is refused by Params validation with a 4xx and starts nothing.
    bad = [value.replace("feedfacecafe0001", "feedfacecafe0002") for value in argv]
    assert main([*bad, "--conf", '{"note": 5}']) == 2
    assert "feedfacecafe0002" not in str(live_airflow.api("GET", "/api/v2/dags/alert_intake_selftest/dagRuns").json())
