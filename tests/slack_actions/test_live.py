"""The whole loop on a REAL running Airflow (``make run``'s launcher): the RDS growth request reaches the Slack sink
with buttons, a signed press of Approve (as Slack sends it) answers it, the storage grows exactly once, a second
press is told it was already decided, and the message is updated with who answered what and when."""

from __future__ import annotations

import json
import time

import pytest
import requests

from tests.sops.rds_storage_guard.test_live import (
    DAG_ID,
    allocated,
    report_for,
    start_run,
    started_runs,  # noqa: F401 (fixture)
    unique,
    wait_for_task_state,
    wait_until_parking_is_processed,
)
from toilless.slack_actions.press import SANDBOX_USER, newest_with_button, payload_for, signed_request

pytestmark = pytest.mark.integration


def press_button(live_airflow, instance_id: str, label: str) -> requests.Response:
    sandbox = live_airflow.home / "sandbox"
    secret = (sandbox / "slack_signing_secret").read_text(encoding="utf-8").strip()
    messages = [m for m in live_airflow.slack_sink.messages() if instance_id in m.get("text", "")]
    found = newest_with_button(messages, label)
    assert found is not None, f"no {label} button for {instance_id}"
    message, button = found
    payload = payload_for(
        button,
        message=message,
        channel=message["channel"],
        user_id=SANDBOX_USER,
        response_url=f"{live_airflow.slack_sink.url}/response/{message['ts']}",
    )
    body, headers = signed_request(secret, payload)
    return requests.post(f"{live_airflow.base_url}/toilless/slack/actions", data=body, headers=headers, timeout=60)


def test_signed_press_approves_rds_growth_once(live_airflow, started_runs) -> None:  # noqa: F811
    instance_id = unique("slack-approve-db")
    run_id = start_run(live_airflow, started_runs, instance_id)
    wait_for_task_state(live_airflow, run_id, "request_approval", "awaiting_input")
    request = live_airflow.slack_sink.wait_for(
        lambda m: m["channel"] == "urgent" and instance_id in m.get("text", ""), timeout=30
    )[0]
    assert [button["label"] for button in request["buttons"]] == ["Approve", "Reject"]
    assert "permanent" in request["text"]
    assert "+5.29 USD/month" in request["text"]
    wait_until_parking_is_processed(live_airflow, run_id)

    first = press_button(live_airflow, instance_id, "Approve")
    # Within 10 s of the park the route says "press again in a few seconds" and decides nothing (hitl.py): a person
    # presses again, so does the test.
    deadline = time.monotonic() + 60
    while first.status_code == 409 and first.json()["outcome"] == "not_ready" and time.monotonic() < deadline:
        time.sleep(2)
        first = press_button(live_airflow, instance_id, "Approve")
    assert first.status_code == 200, first.text
    assert first.json()["outcome"] == "decided"
    assert first.json()["decision"]["by"] == "admin"

    run = live_airflow.wait_for_run(DAG_ID, run_id, timeout=300)
    assert run["state"] == "success"
    assert allocated(live_airflow, instance_id) == 146
    assert "approved by admin" in report_for(live_airflow, instance_id)

    # The message was updated in place: no buttons left, who answered what and when.
    updates = live_airflow.slack_sink.wait_for(
        lambda m: m.get("kind") == "update" and m.get("ts") == request["ts"], timeout=30
    )
    assert updates[-1]["buttons"] == []
    assert "*Approved* by admin (<@U0SANDBOX> in Slack)" in updates[-1]["text"]

    # The same button pressed again (a new, correctly signed request): nothing is decided twice.
    hitl = live_airflow.api(
        "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/request_approval/-1/hitlDetails"
    ).json()
    again = press_button_again(live_airflow, request)
    assert again.status_code == 200
    assert again.json()["text"].startswith("already decided: approved by admin")
    after = live_airflow.api(
        "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/request_approval/-1/hitlDetails"
    ).json()
    assert after["responded_at"] == hitl["responded_at"]
    assert allocated(live_airflow, instance_id) == 146
    instance = live_airflow.moto.client("rds", region="eu-west-1").describe_db_instances(
        DBInstanceIdentifier=instance_id
    )["DBInstances"][0]
    assert instance["AllocatedStorage"] == 146
    assert json.dumps(instance.get("PendingModifiedValues") or {}) == "{}"


def press_button_again(live_airflow, request: dict) -> requests.Response:
    """Press the original message's Approve button again, as a person scrolling up would (a new signed request)."""
    sandbox = live_airflow.home / "sandbox"
    secret = (sandbox / "slack_signing_secret").read_text(encoding="utf-8").strip()
    button = next(b for b in request["buttons"] if b["label"] == "Approve")
    payload = payload_for(button, message=request, channel=request["channel"], user_id=SANDBOX_USER)
    body, headers = signed_request(secret, payload)
    return requests.post(f"{live_airflow.base_url}/toilless/slack/actions", data=body, headers=headers, timeout=60)
