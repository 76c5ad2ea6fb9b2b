"""Answering from Slack (issue 19) on a REAL running Airflow (the sandbox launcher, as ``make run`` starts it).

Latency from a signed button press (``POST /toilless/slack/actions``, the request Slack sends) to the HITL question
being decided: the press's answer (200 ``decided`` is returned once the answer is committed in Airflow's metadata
DB, through Airflow's own HITL route function), and to the parked ``request_approval`` task having finished
(Airflow's scheduler resumes it). Each sample is one rds_storage_guard run asking for approval, answered Reject (so
the run ends at once: Approve would wait for RDS). Runs are sequential (``max_active_runs=1``), so the sample is
small: p99 of ``ROUNDS`` samples is their maximum.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

import requests

#: Presses measured (one run each); TOILLESS_BENCH_SLACK_ROUNDS overrides it for a quicker look.
ROUNDS = int(os.environ.get("TOILLESS_BENCH_SLACK_ROUNDS", "8"))
REGION = "eu-west-1"
DAG_ID = "rds_storage_guard"


def run(work: Path) -> list[dict[str, Any]]:
    from tests.fixtures.live_airflow import LiveAirflow, start_launcher, stop_launcher

    home = work / "airflow"
    home.mkdir(parents=True)
    facts, process = start_launcher(home)
    try:
        live = LiveAirflow(facts, process)
        decided, resumed = _presses(live)
    finally:
        stop_launcher(process)
    return [
        _row("press -> HITL decided (committed, answer received)", decided, goal_ms=1000),
        _row("press -> request_approval task finished (scheduler resumed it)", resumed, goal_ms=None),
    ]


def _presses(live: Any) -> tuple[list[float], list[float]]:
    from sandbox.rds_storage_guard_data import seed_rds_instance
    from tests.sops.rds_storage_guard.test_live import wait_for_task_state, wait_until_parking_is_processed
    from toilless.slack_actions.press import SANDBOX_USER, newest_with_button, payload_for, signed_request

    secret = (live.home / "sandbox" / "slack_signing_secret").read_text(encoding="utf-8").strip()
    decided: list[float] = []
    resumed: list[float] = []
    for index in range(ROUNDS):
        instance_id = f"bench-slack-{index}-{int(time.time())}"
        seed_rds_instance(
            live.moto.client("rds", region=REGION),
            live.moto.client("cloudwatch", region=REGION),
            instance_id,
            allocated_gib=100,
            used_pct=94.0,
            growth_gib_per_day=0.5,
        )
        run_id = f"bench__{instance_id}"
        conf = {"instance_ids": [instance_id], "region": REGION, "approval_timeout_minutes": 30}
        live.trigger(DAG_ID, conf=conf, run_id=run_id)
        # The sandbox's own scheduled run may hold the DAG (max_active_runs=1) for a while: a long first wait.
        wait_for_task_state(live, run_id, "request_approval", "awaiting_input", timeout=900)
        wait_until_parking_is_processed(live, run_id)
        messages = [m for m in live.slack_sink.messages() if instance_id in m.get("text", "")]
        found = newest_with_button(messages, "Reject")
        assert found is not None, f"no Reject button for {instance_id}"
        message, button = found
        payload = payload_for(button, message=message, channel=message["channel"], user_id=SANDBOX_USER)
        body, headers = signed_request(secret, payload)
        started = time.perf_counter()
        response = requests.post(f"{live.base_url}/toilless/slack/actions", data=body, headers=headers, timeout=60)
        decided.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
        assert response.json()["outcome"] == "decided", response.text
        while live.task_instances(DAG_ID, run_id)["request_approval"]["state"] != "success":
            if time.perf_counter() - started > 120:
                raise TimeoutError(f"request_approval of {run_id} not resumed after 120 s")
            time.sleep(0.2)
        resumed.append(time.perf_counter() - started)
        live.wait_for_run(DAG_ID, run_id, timeout=300)
    return decided, resumed


def _row(metric: str, samples: list[float], *, goal_ms: float | None) -> dict[str, Any]:
    ordered = sorted(samples)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1000
    return {
        "benchmark": "slack_actions",
        "metric": metric,
        "value": f"p50 {p50:.0f} ms, p99 {p99:.0f} ms ({len(ordered)} presses)",
        "goal": f"p99 < {goal_ms:.0f} ms (Slack wants an answer within 3 s)" if goal_ms else "",
        "met": (p99 < goal_ms) if goal_ms else None,
        "notes": "sandbox launcher on SQLite; one rds_storage_guard run per press, answered Reject",
    }


if __name__ == "__main__":
    for row in run(Path("/tmp/bench_slack_actions")):
        print(row)
