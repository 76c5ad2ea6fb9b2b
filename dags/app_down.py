"""
# App down (`app_down`)

SOP *Application down, restart and rollback* (SOPS.md). The outage it encodes: the app was unreachable, support paged
everyone, the team restarted it (it did not help), and an hour later someone noticed that a QA build had gone to
production; redeploying the previous release fixed it. On Kubernetes every Deployment update creates a ReplicaSet, so
"redeploy the previous release" is a rollback to the previous ReplicaSet revision. This DAG verifies, escalates at
once, reads the rollout history first, and rolls back, restarts or scales only when the evidence says so.

## When it runs
- **Alert**: application down / service unavailable, through the alert intake (route in `include/alert_routes.yaml`);
  the alert's `deployment` (or `app`, `service`) label names the configured service.
- **Manual**: with the Params below. There is no schedule.

## Steps
1. `resolve_settings`: `include/config/app_down.yaml` + Variable `toilless_app_down` + Params; the service must be
   configured, its names valid Kubernetes names and its endpoints http(s) URLs, else the run fails at once.
2. `verify_unreachable`: the Deployment's readiness (ready/desired, pod phases, restarts, OOMKilled, CrashLoopBackOff,
   image pull errors), then every public and internal endpoint probed `probe.attempts` times over a short interval.
   If the app answers: a **false alarm**, reported with the evidence; nothing else runs.
3. `escalate_outage`: at once, every configured role (customer support, networking, ops, database, development: a
   Slack channel each, optionally a user group) with the evidence.
4. `gather_evidence`: rollout history (ReplicaSets by revision: images, change-cause, creation times), the error lines
   of the pods' logs (and of the previous container of restarted ones), CPU usage vs limits where metrics exist, the
   Service and Ingress.
5. `decide_recovery` (pure, `toilless.sops.app_down.decide`): a rollout within `recovery.rollout_window_minutes` before
   the outage and an earlier revision with a different image → **roll back** to it; no recent change and pods
   crash-looping or hung → **restart** (never twice in one incident); all pods ready but CPU saturated → **scale**
   within min/max; else **escalate only**. One sentence cites the evidence; what was not chosen is said too.
6. `request_rollback_approval` (prod only, unless `recovery.automatic_rollback_in_prod`): a person approves in Airflow.
7. `roll_back_deployment` / `restart_deployment` / `scale_deployment`: as `kubectl rollout undo --to-revision`,
   `kubectl rollout restart`, `kubectl scale` (`toilless.hooks.kubernetes`), through the **action gate** at the moment
   of acting: dry run, once per incident (a marker on the Deployment, written before the call), circuit breaker per
   Deployment, maintenance window. A rollback is refused if the Deployment changed since the decision.
8. `verify_recovery` (deferred to the triggerer): rollout complete and every endpoint answering for
   `verify.sustain_seconds`.
9. `report_timeline`: verified at, escalated at, decision, action at, recovered at, to the incident channel.
10. `escalate_again`: not recovered in time (or nothing could be done): every role again with everything learned, and
    a page to `escalation.page_channel`.

## Safety
- `dry_run` reports what would be done and changes nothing (no marker either); the maintenance window changes nothing.
- A retried or crashed action never acts twice: the marker on the Deployment names the incident and the run.
- Invalid settings or Params (unknown Deployment, unreadable namespace, a non-http(s) endpoint) fail at once, before
  anything is changed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import dag

from toilless.common.dag_defaults import default_args, task
from toilless.common.params import alert_param, dry_run_param, optional_param
from toilless.notifiers.slack_approval import SlackApprovalRequestNotifier
from toilless.operators.approval import TimedApprovalOperator
from toilless.sensors.app_down import AppRecoverySensor
from toilless.sops.app_down import steps

DECIDE = "decide_recovery"


@dag(
    dag_id="app_down",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # two runs must never act on the same Deployment at once
    tags=["sop", "kubernetes", "outage"],
    doc_md=__doc__,
    default_args=default_args(owner="sre", retries=2, retry_delay=timedelta(seconds=30)),
    params={
        "dry_run": dry_run_param(),
        "alert": alert_param(),
        "deployment": optional_param(
            "string",
            "Service",
            "A service configured under `services` (its Deployment). Empty: the alert's label, else the only one.",
        ),
        "allow_action": optional_param(
            "boolean",
            "Allow the recovery action",
            "Off: verify, escalate and decide only. Empty: configured. A run can switch it off, never on.",
        ),
    },
)
def app_down() -> None:
    @task(multiple_outputs=False)
    def resolve_settings(params: dict[str, Any] | None = None, **context: Any) -> dict[str, Any]:
        return steps.resolve_settings(dict(params or {}), context)

    @task(multiple_outputs=False)
    def verify_unreachable(settings: dict[str, Any]) -> dict[str, Any]:
        return steps.verify_unreachable(settings)

    @task(multiple_outputs=False)
    def escalate_outage(settings: dict[str, Any], verification: dict[str, Any]) -> dict[str, Any]:
        return steps.escalate_outage(settings, verification)

    @task(multiple_outputs=False)
    def gather_evidence(settings: dict[str, Any], verification: dict[str, Any]) -> dict[str, Any]:
        return steps.gather_evidence(settings, verification)

    @task(multiple_outputs=False)
    def decide_recovery(settings: dict[str, Any], evidence: dict[str, Any]) -> dict[str, Any]:
        return steps.decide_recovery(settings, evidence)

    @task.branch
    def choose_path(decision: dict[str, Any]) -> str:
        return steps.choose_path(decision)

    @task(trigger_rule="none_failed_min_one_success", multiple_outputs=False, retries=1)
    def roll_back_deployment(settings: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any]:
        return steps.act(settings, decision, "rollback")

    @task(multiple_outputs=False, retries=1)
    def restart_deployment(settings: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any]:
        return steps.act(settings, decision, "restart")

    @task(multiple_outputs=False, retries=1)
    def scale_deployment(settings: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any]:
        return steps.act(settings, decision, "scale")

    @task(trigger_rule="all_done", multiple_outputs=False)
    def report_timeline(settings: dict[str, Any], verification: dict[str, Any], **context: Any) -> dict[str, Any]:
        ti = context["ti"]
        return steps.report_timeline(
            context,
            settings,
            verification,
            ti.xcom_pull(task_ids="escalate_outage"),
            ti.xcom_pull(task_ids=DECIDE),
        )

    @task(multiple_outputs=False)
    def escalate_again(settings: dict[str, Any], report: dict[str, Any], **context: Any) -> dict[str, Any]:
        return steps.escalate_again(context, settings, report)

    settings = resolve_settings()
    verification = verify_unreachable(settings)
    escalation = escalate_outage(settings, verification)
    evidence = gather_evidence(settings, verification)
    escalation >> evidence  # telling people comes first
    decision = decide_recovery(settings, evidence)
    path = choose_path(decision)
    approval = TimedApprovalOperator(
        task_id=steps.APPROVAL_TASK,
        subject=f"{{{{ ti.xcom_pull(task_ids='{DECIDE}')['approval_subject'] }}}}",
        body=f"{{{{ ti.xcom_pull(task_ids='{DECIDE}')['approval_body'] }}}}",
        timeout_minutes=f"{{{{ ti.xcom_pull(task_ids='{DECIDE}')['approval_timeout_minutes'] }}}}",
        notifiers=[SlackApprovalRequestNotifier(config_name=steps.DAG_ID)],
        retries=0,  # re-asking after a failure would post a second request
    )
    rollback = roll_back_deployment(settings, decision)
    restart = restart_deployment(settings, decision)
    scale = scale_deployment(settings, decision)
    verify = AppRecoverySensor(task_id="verify_recovery", settings=settings, trigger_rule="none_failed_min_one_success")
    report = report_timeline(settings, verification)
    path >> approval >> rollback
    path >> [rollback, restart, scale]
    [rollback, restart, scale] >> verify >> report
    path >> report
    escalate_again(settings, report)


app_down()
