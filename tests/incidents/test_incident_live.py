"""Issue 18's acceptance on a RUNNING Airflow (the session's ``live_airflow``: ``make run``'s launcher).

An Alertmanager-shaped alert is POSTed to the intake webhook of the live API server; the routed runbook
(rds_storage_guard, its target an RDS instance in the sandbox's moto) asks for approval; the test approves through
Airflow's HITL REST API as the Required Actions page does; the storage grows; the alert's resolved notification
arrives; the incident is resolved, which starts ``postmortem_draft`` by itself (a P0); exactly one issue lands in
the sandbox's fake GitHub with the incident's timeline, and a second resolve does not file a second one.

The timeline is read through the Toilless REST route (``GET /toilless/incidents/{id}``), the issues through the fake
GitHub's REST API: the test sees only what a person or a client could see.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from sandbox.moto_server import REGION
from sandbox.rds_storage_guard_data import seed_rds_instance
from tests.fixtures.alert_intake import make_alert, make_payload
from tests.sops.rds_storage_guard.test_live import wait_until_parking_is_processed
from toilless.incidents import events as ev
from toilless.incidents.markdown import md

pytestmark = pytest.mark.integration

DAG_ID = "rds_storage_guard"
ALERTNAME = "RDSLowStorage"
INCIDENT_REPO = "sandbox/infrastructure"  # sandbox/services/incident_record.py


def by_kind_first(timeline: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(item for item in timeline if item["kind"] == kind)


def poll(what: str, probe: Callable[[], Any], timeout: float, every: float = 0.5) -> Any:
    """``probe()`` until it returns something truthy; a TimeoutError naming ``what`` (and the last value) after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except requests.exceptions.Timeout as err:  # a busy API server: ask again, within the deadline
            last = err
        else:
            if last:
                return last
        time.sleep(every)
    raise TimeoutError(f"{what} not seen within {timeout}s (last: {last!r})")


class Incident:
    """The live system as a client sees it: the intake webhook, the incident route, the fake GitHub."""

    def __init__(self, live_airflow: Any) -> None:
        self.live = live_airflow
        intake = live_airflow.published["alert_intake"]
        self.intake_url = f"{live_airflow.base_url}{intake['path']}"
        self.headers = {"Authorization": f"Bearer {intake['token']}"}
        self.incidents_url = f"{self.intake_url.rsplit('/', 1)[0]}/incidents"
        self.github_url = live_airflow.published["incident_github"]["url"]

    def post_alert(self, alert: dict[str, Any]) -> None:
        response = requests.post(self.intake_url, json=make_payload(alert), headers=self.headers, timeout=30)
        assert response.status_code == 200, response.text

    def record(self, incident_id: str) -> dict[str, Any] | None:
        response = requests.get(f"{self.incidents_url}/{incident_id}", headers=self.headers, timeout=30)
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        return response.json()

    def issues(self) -> list[dict[str, Any]]:
        response = requests.get(
            f"{self.github_url}/repos/{INCIDENT_REPO}/issues",
            params={"state": "all"},
            headers={"Authorization": "token test"},
            timeout=30,
        )
        response.raise_for_status()
        return list(response.json())

    def run_of(self, fingerprint: str) -> dict[str, Any] | None:
        response = self.live.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns", params={"limit": 100})
        response.raise_for_status()
        found = [
            run
            for run in response.json()["dag_runs"]
            if ((run.get("conf") or {}).get("alert") or {}).get("fingerprint") == fingerprint
        ]
        return found[0] if found else None

    def dag_is_free(self) -> bool:
        """No run of the runbook queued or running: max_active_runs=1, and a fresh Airflow's first scheduled run
        (catchup of the latest slot) would hold the alert's run behind it."""
        response = self.live.api(
            "GET", f"/api/v2/dags/{DAG_ID}/dagRuns", params={"state": ["queued", "running"], "limit": 1}
        )
        response.raise_for_status()
        return response.json()["total_entries"] == 0

    def task_state(self, run_id: str, task_id: str) -> str | None:
        return self.live.task_instances(DAG_ID, run_id).get(task_id, {}).get("state")


@pytest.fixture
def fail_leftover_runs(live_airflow: Any):
    """Runs this test started that still wait (a failed assertion before the approval) are failed afterwards, so
    they cannot hold rds_storage_guard (max_active_runs=1) for the next test."""
    run_ids: list[str] = []
    yield run_ids
    for run_id in run_ids:
        run = live_airflow.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}").json()
        if run.get("state") not in ("success", "failed"):
            live_airflow.api("PATCH", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}", json={"state": "failed"})


def test_alert_to_postmortem_on_running_airflow(live_airflow: Any, fail_leftover_runs: list[str]) -> None:
    live = Incident(live_airflow)
    live_airflow.wait_for_dag(DAG_ID)
    live_airflow.wait_for_dag("postmortem_draft")
    poll("rds_storage_guard free of other runs", live.dag_is_free, timeout=300)
    started = time.monotonic()
    instance_id = f"e2e-db-{uuid.uuid4().hex[:6]}"
    fingerprint = uuid.uuid4().hex[:16]
    # The alert's own start, a minute ago (the intake refuses alerts from the future, and the post-mortem's impact is
    # measured from it).
    starts_at = (datetime.now(UTC) - timedelta(minutes=1)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    incident_id = ev.incident_key(fingerprint, starts_at)

    # The target: an instance 94% full in the sandbox's region (where the alert's runbook looks), growing 0.5 GiB/day.
    seed_rds_instance(
        live_airflow.moto.client("rds", region=REGION),
        live_airflow.moto.client("cloudwatch", region=REGION),
        instance_id,
        allocated_gib=100,
        used_pct=94.0,
        growth_gib_per_day=0.5,
    )
    fired = make_alert(
        ALERTNAME,
        fingerprint=fingerprint,
        starts_at=starts_at,
        dbinstance_identifier=instance_id,
        severity="critical",
        environment="prod",
        service="orders",
    )

    # 1. Alertmanager delivers; the intake starts the routed runbook.
    live.post_alert(fired)
    run = poll("the runbook's run", lambda: live.run_of(fingerprint), timeout=60)
    run_id = run["dag_run_id"]
    fail_leftover_runs.append(run_id)
    assert run["conf"]["instance_ids"] == [instance_id]

    # 2. The irreversible action waits for a person.
    poll(
        "request_approval awaiting input",
        lambda: live.task_state(run_id, "request_approval") == "awaiting_input",
        timeout=180,  # a deadline, not a wait: seconds on an idle machine
    )
    rds = live_airflow.moto.client("rds", region=REGION)

    def allocated() -> int:
        return rds.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0]["AllocatedStorage"]

    assert allocated() == 100

    # 3. A person approves, as the Required Actions page does (PATCH hitlDetails, as the admin user).
    wait_until_parking_is_processed(live_airflow, run_id)
    answer = live_airflow.api(
        "PATCH",
        f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/request_approval/-1/hitlDetails",
        json={"chosen_options": ["Approve"], "params_input": {}},
    )
    assert answer.status_code == 200, answer.text

    # 4. The action happens on the target.
    finished = live_airflow.wait_for_run(DAG_ID, run_id, timeout=180)
    assert finished["state"] == "success"
    assert allocated() == 146

    # 5. The alert resolves; the incident is resolved; the post-mortem is drafted without anyone asking (a P0).
    resolved = dict(fired, status="resolved", endsAt=datetime.now(UTC).isoformat().replace("+00:00", "Z"))
    live.post_alert(resolved)
    record = poll(
        "the post-mortem filed on the incident",
        lambda: (found := live.record(incident_id)) and found["incident"]["postmortem_url"] and found,
        timeout=120,
    )
    # Drafted by the run the resolve started (not by the 10-minute schedule, nor by a person).
    draft_run = live_airflow.api("GET", f"/api/v2/dags/postmortem_draft/dagRuns/postmortem__{incident_id}")
    assert draft_run.status_code == 200, draft_run.text
    assert draft_run.json()["triggering_user_name"] == "toilless-incident-record"
    assert draft_run.json()["conf"] == {"incident_id": incident_id}
    incident = record["incident"]
    assert incident["severity"] == "P0"
    assert incident["resolved_at"] is not None
    assert incident["dag_id"] == DAG_ID
    assert incident["run_id"] == run_id

    # The timeline: every event, in order, with its actor. The intake's own Slack acks (firing, resolved) are posted
    # by its outbox whenever it runs, so they are checked apart from the run's order.
    acks = [item for item in record["timeline"] if (item.get("data") or {}).get("via") == "intake"]
    assert acks, record["timeline"]
    assert all(item["kind"] == "message_sent" for item in acks), acks
    assert min(item["at"] for item in acks) >= by_kind_first(record["timeline"], "alert_received")["at"]
    timeline = [(item["kind"], item["actor"]) for item in record["timeline"] if item not in acks]
    collapsed = [step for index, step in enumerate(timeline) if index == 0 or step != timeline[index - 1]]
    assert collapsed == [
        ("alert_received", "alertmanager"),
        ("severity_set", "toilless"),
        ("runbook_started", "toilless"),
        ("message_sent", "toilless"),  # the approval request
        ("approval", "admin"),
        ("gate_verdict", "toilless"),
        ("action", "toilless"),
        ("message_sent", "toilless"),  # the report
        ("runbook_finished", "toilless"),
        ("alert_resolved", "alertmanager"),
        ("postmortem_filed", "toilless"),
    ], timeline
    by_kind = {item["kind"]: item for item in record["timeline"]}
    assert by_kind["approval"]["summary"] == "Approve (answered)"
    assert by_kind["gate_verdict"]["data"]["allowed"] is True
    assert by_kind["action"]["summary"] == f"grow storage 100 -> 146 GiB on {instance_id}: done"
    assert by_kind["runbook_started"]["data"]["run_id"] == run_id
    moments = [item["at"] for item in record["timeline"]]
    assert moments == sorted(moments)

    # Exactly one issue, with that timeline in order, its actors, and the action that worked.
    mine = [issue for issue in live.issues() if incident_id in issue["body"]]
    assert len(mine) == 1, [issue["title"] for issue in mine]
    body = mine[0]["body"]
    assert mine[0]["html_url"].rsplit("/", 1)[1] == incident["postmortem_url"].rsplit("/", 1)[1]
    rows = ("alert_received", "runbook_started", "approval", "gate_verdict", "action", "alert_resolved")
    order = [body.index(f"| {md(kind)} |") for kind in rows]
    assert order == sorted(order), body
    assert "👤 admin" in body
    assert md(f"grow storage 100 -> 146 GiB on {instance_id}: done") in body.split("## Resolution")[1], body
    elapsed = time.monotonic() - started

    # 6. A second resolve (Alertmanager re-sends it) and a manual draft of the same incident file nothing new.
    live.post_alert(resolved)
    manual = live_airflow.trigger("postmortem_draft", conf={"incident_id": incident_id})
    assert live_airflow.wait_for_run("postmortem_draft", manual["dag_run_id"], timeout=90)["state"] == "success"
    assert len([issue for issue in live.issues() if incident_id in issue["body"]]) == 1
    kinds = [item["kind"] for item in live.record(incident_id)["timeline"]]
    assert kinds.count("postmortem_filed") == 1
    assert kinds.count("alert_resolved") == 1
    print(f"alert -> post-mortem filed: {elapsed:.1f} s; with the repeat: {time.monotonic() - started:.1f} s")
