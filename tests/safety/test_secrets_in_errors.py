"""Defect 8 (issue 10): secrets inside exceptions must never reach Slack.

End to end: a real DAG run whose task raises an exception quoting a real Connection's URI (with its password), and one
quoting a value registered with Airflow's secrets masker, through the real failure notifier to the local Slack sink.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

FIXTURE_DAGS = Path(__file__).resolve().parents[1] / "dags" / "fixture_dags"


def test_connection_password_in_an_exception_is_in_no_slack_message(run_dag, slack_sink, set_connection) -> None:
    password = f"S3cr3tPw-{uuid.uuid4().hex[:8]}"
    set_connection(
        "orders_db_leaky",
        {"conn_type": "postgres", "host": "db.internal", "login": "orders", "password": password, "port": 5432},
    )

    run = run_dag("test.secret_in_error", dag_folder=FIXTURE_DAGS, run_conf={"conn_id": "orders_db_leaky"})

    assert run.state == "failed"
    messages = slack_sink.messages()
    assert len(messages) == 1
    posted = json.dumps(messages, ensure_ascii=False)
    assert password not in posted
    # The error itself still reaches the on-call, with the password masked: the message stays useful.
    # (the zero-width space after "postgres:" keeps Slack from linking the address)
    assert "could not connect to postgres:\u200b//orders:***@db.internal:5432" in messages[0]["text"]


def test_value_registered_with_airflows_secrets_masker_is_in_no_slack_message(run_dag, slack_sink) -> None:
    # No pattern recognises this value: only Airflow's masker knows it is a secret.
    registered = f"opaque{uuid.uuid4().hex}"

    run = run_dag("test.secret_in_error", dag_folder=FIXTURE_DAGS, run_conf={"registered_secret": registered})

    assert run.state == "failed"
    messages = slack_sink.messages()
    assert len(messages) == 1
    assert registered not in json.dumps(messages, ensure_ascii=False)
    assert "upstream refused token *** (HTTP 401)" in messages[0]["text"]


def test_recovery_trigger_masks_a_failed_look_in_its_event_and_log(monkeypatch, caplog) -> None:
    import asyncio
    from datetime import UTC, datetime

    from toilless.triggers import order_processor as trigger_module

    def failing_look(*args, **kwargs):
        raise ConnectionError("could not connect to postgresql://orders:S3cr3tPw@db.internal/orders")

    monkeypatch.setattr(trigger_module, "check_recovery", failing_look)
    trigger = trigger_module.OrderProcessorRecoveryTrigger(
        settings={}, restarted_at=datetime.now(UTC).isoformat(), baseline_outstanding=1,
        deadline=datetime.now(UTC).isoformat(), poll_seconds=0,
    )  # fmt: skip

    async def first_event():
        async for event in trigger.run():
            return event

    with caplog.at_level("WARNING"):
        event = asyncio.run(first_event())

    assert event.payload["status"] == "timeout"
    assert "orders:***@db.internal" in event.payload["detail"]
    assert "S3cr3tPw" not in str(event.payload)
    assert "S3cr3tPw" not in caplog.text
