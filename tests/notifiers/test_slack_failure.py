"""The shared failure notifier end to end: a real DAG run fails, the Slack sink receives exactly one message."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

FIXTURE_DAGS = Path(__file__).resolve().parents[1] / "dags" / "fixture_dags"


def test_test_dag_failure_goes_to_non_urgent_marked_no_action(run_dag, slack_sink) -> None:
    run = run_dag("test.failing_example", dag_folder=FIXTURE_DAGS)

    assert run.state == "failed"
    messages = slack_sink.messages()
    # Two tries (retries=1), one message: the notifier fires on the final failure only.
    assert len(messages) == 1
    message = messages[0]
    assert message["channel"] == "non_urgent"
    text = message["text"]
    assert "test.failing_example" in text
    assert "fail_on_purpose" in text
    assert run.run_id in text
    assert "try 2/2" in text
    assert "deliberate failure" in text
    assert "second line" not in text  # the error's first line only
    assert f"/dags/test.failing_example/runs/{run.run_id.replace(':', '%3A').replace('+', '%2B')}" in text
    assert "/tasks/fail_on_purpose?try_number=2" in text
    assert any("No action needed" in block.get("text", {}).get("text", "") for block in message["blocks"])


def test_sop_dag_code_failure_goes_to_the_owner_route_once(run_dag, slack_sink, set_variable) -> None:
    set_variable(
        "toilless_toilless",
        {
            "environment": "preprod",
            "airflow_base_url": "https://airflow.example.test",
            "failure_alerts": {"owner_channels": {"sre-orders": "developers"}},
        },
    )
    run = run_dag("failing_sop_example", dag_folder=FIXTURE_DAGS)

    assert run.state == "failed"
    messages = slack_sink.messages()
    assert [m["channel"] for m in messages] == ["developers"]
    text = messages[0]["text"]
    assert "Task failed [preprod]" in text
    assert "divide_backlog" in text
    assert "try 3/3" in text
    assert "division by zero" in text
    # The configured UI base URL is used for the log link.
    assert "https://airflow.example.test/dags/failing_sop_example/runs/" in text


def test_a_slack_outage_does_not_change_the_task_outcome(run_dag, slack_sink) -> None:
    slack_sink.fail_with_status = 500
    run = run_dag("test.failing_example", dag_folder=FIXTURE_DAGS)

    assert run.state == "failed"
    assert slack_sink.messages() == []
