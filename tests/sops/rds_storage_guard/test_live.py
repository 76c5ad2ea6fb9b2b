"""rds_storage_guard's approval path on a REAL running Airflow: a person approves, rejects, or does not answer.

The approval is a human-in-the-loop task (awaiting_input); the answer goes through Airflow's REST API exactly as the
UI's Required Actions page sends it. The test instances live in their own region of the sandbox's moto, so the
scheduled runs (which check the sandbox's default region) never touch them.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from sandbox.rds_storage_guard_data import seed_rds_instance

pytestmark = pytest.mark.integration

DAG_ID = "rds_storage_guard"
REGION = "eu-west-1"


@pytest.fixture
def started_runs(live_airflow):
    """Run ids this test started; any still going afterwards is failed, so it cannot block the next run
    (max_active_runs=1) while it waits for an answer nobody gives."""
    run_ids: list[str] = []
    yield run_ids
    for run_id in run_ids:
        run = live_airflow.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}").json()
        if run.get("state") not in ("success", "failed"):
            live_airflow.api("PATCH", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}", json={"state": "failed"})


def start_run(live_airflow, started_runs, instance_id: str, timeout_minutes: float = 30) -> str:
    seed_rds_instance(
        live_airflow.moto.client("rds", region=REGION),
        live_airflow.moto.client("cloudwatch", region=REGION),
        instance_id,
        allocated_gib=100,
        used_pct=94.0,
        growth_gib_per_day=0.5,
    )
    run_id = f"test__{instance_id}"
    conf = {"instance_ids": [instance_id], "region": REGION, "approval_timeout_minutes": timeout_minutes}
    live_airflow.trigger(DAG_ID, conf=conf, run_id=run_id)
    started_runs.append(run_id)
    return run_id


def wait_for_task_state(live_airflow, run_id: str, task_id: str, state: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = live_airflow.task_instances(DAG_ID, run_id).get(task_id, {})
        if last.get("state") == state:
            return last
        time.sleep(1)
    raise TimeoutError(f"{task_id} of {run_id} not {state} after {timeout}s (last: {last.get('state')})")


def wait_until_parking_is_processed(live_airflow, run_id: str, timeout: float = 90) -> None:
    """Wait until the scheduler has handled the exit of the process that parked request_approval.

    An answer that arrives before that races Airflow 3.3.2: the resumed task is QUEUED when the scheduler reads the
    parking process's "success" event for the same try, and it fails the task ("finished with state success, but the
    task instance's state attribute is queued"). A person answers after reading the request, far later; a test must
    wait for the scheduler on purpose. Its log line is the only outside sign of it.
    """
    log_file = Path(live_airflow.facts.get("log_file") or live_airflow.home / "logs" / "standalone.log")
    marker = f"task_id=request_approval, run_id={run_id}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log_file.exists() and any(
            "TaskInstance Finished" in line and marker in line
            for line in log_file.read_text(encoding="utf-8", errors="replace").splitlines()
        ):
            time.sleep(1)
            return
        time.sleep(1)
    raise TimeoutError(f"the scheduler never reported the parked request_approval of {run_id} in {log_file}")


def answer(live_airflow, run_id: str, option: str) -> None:
    wait_until_parking_is_processed(live_airflow, run_id)
    response = live_airflow.api(
        "PATCH",
        f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/request_approval/-1/hitlDetails",
        json={"chosen_options": [option], "params_input": {}},
    )
    assert response.status_code == 200, response.text


def allocated(live_airflow, instance_id: str) -> int:
    rds = live_airflow.moto.client("rds", region=REGION)
    return rds.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0]["AllocatedStorage"]


def report_for(live_airflow, instance_id: str) -> str:
    found = live_airflow.slack_sink.wait_for(
        lambda m: m["channel"] == "infrastructure" and f"`{instance_id}`" in m.get("text", ""), timeout=60
    )
    return found[-1]["text"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_approve_grows_storage(live_airflow, started_runs) -> None:
    instance_id = unique("approve-db")
    run_id = start_run(live_airflow, started_runs, instance_id)
    wait_for_task_state(live_airflow, run_id, "request_approval", "awaiting_input")

    # The request reached Slack before anyone answered: what changes, permanent, the cost.
    request = live_airflow.slack_sink.wait_for(
        lambda m: m["channel"] == "urgent" and instance_id in m.get("text", ""), timeout=30
    )[0]["text"]
    assert "Approval needed" in request
    assert "permanent" in request
    # 94 GiB used + 0.5 GiB/day x 30 days = 109 GiB at <= 75% used -> 146 GiB; 46 GiB x 0.115 USD.
    # The body is escaped for mrkdwn like all outside text: Slack shows "&gt;" as ">".
    assert "100 GiB -&gt; *146 GiB* (+46 GiB)" in request
    assert "+5.29 USD/month" in request
    assert "required_actions" in request
    assert allocated(live_airflow, instance_id) == 100

    answer(live_airflow, run_id, "Approve")
    run = live_airflow.wait_for_run(DAG_ID, run_id, timeout=300)
    assert run["state"] == "success"
    assert allocated(live_airflow, instance_id) == 146
    text = report_for(live_airflow, instance_id)
    assert "approved by admin" in text
    assert "grown 100 -> 146 GiB" in text


def test_reject_changes_nothing(live_airflow, started_runs) -> None:
    instance_id = unique("reject-db")
    run_id = start_run(live_airflow, started_runs, instance_id)
    wait_for_task_state(live_airflow, run_id, "request_approval", "awaiting_input")

    answer(live_airflow, run_id, "Reject")
    run = live_airflow.wait_for_run(DAG_ID, run_id, timeout=300)
    assert run["state"] == "success"
    states = {task_id: ti["state"] for task_id, ti in live_airflow.task_instances(DAG_ID, run_id).items()}
    assert states["expand_allocated_storage"] == "skipped"
    assert states["report_storage"] == "success"
    assert allocated(live_airflow, instance_id) == 100
    assert "rejected by admin: not grown, nothing changed" in report_for(live_airflow, instance_id)


def test_no_answer_times_out_as_reject(live_airflow, started_runs) -> None:
    instance_id = unique("timeout-db")
    # 0.1 minutes: the scheduler's timeout sweep (every 15 s) resolves it with the default, Reject.
    run_id = start_run(live_airflow, started_runs, instance_id, timeout_minutes=0.1)
    run = live_airflow.wait_for_run(DAG_ID, run_id, timeout=300)
    assert run["state"] == "success"
    states = {task_id: ti["state"] for task_id, ti in live_airflow.task_instances(DAG_ID, run_id).items()}
    assert states["request_approval"] == "success"
    assert states["expand_allocated_storage"] == "skipped"
    assert allocated(live_airflow, instance_id) == 100
    assert "no answer within 0.1 minutes: not grown, nothing changed" in report_for(live_airflow, instance_id)
