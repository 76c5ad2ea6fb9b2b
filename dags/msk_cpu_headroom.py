"""# Kafka (AWS MSK) CPU headroom (`msk_cpu_headroom`)

SOP "Data stores", Kafka (AWS MSK) CPU: MSK's best practice warns when less than 40% CPU headroom remains over an
hour; above 80% used is the real concern. Find out whether it is a sudden spike (usually someone's load: ask them to
reduce it) or a steady rise (the cluster needs larger brokers: recommend a type with the numbers and the cost
difference). Resizing is never automatic: two different people approve, then the action gate decides the moment.

## When it runs
- **Alert**: `MSKCPUUtilization` through the alert intake (route in `include/alert_routes.yaml`); the cluster comes
  from the alert's labels (`cluster_arn`, else `cluster_name` / `Cluster Name` looked up in `clusters`).
- **Manual**: Params below. No schedule.

## Steps
1. `resolve_settings`: `include/config/msk_cpu_headroom.yaml` + Variable `toilless_msk_cpu_headroom` + Params (which
   only tighten: `allow_resize` may be switched off, never on). The cluster ARN is checked against the MSK ARN
   format and the configured `clusters` before anything is read.
2. `measure_cpu`: DescribeClusterV2 (an unknown ARN fails the run at once: nothing changed); per broker CpuUser +
   CpuSystem (CloudWatch `AWS/Kafka`, dimensions `Cluster Name`, `Broker ID`) over the last hour (1-minute) and the
   last 7 days (hourly) through GetMetricData; per topic `BytesInPerSec` where enhanced monitoring publishes it
   (PER_TOPIC_PER_BROKER). Every request is checked against CloudWatch's contract (`toilless.common.msk_contracts`).
3. `decide_action` (pure, `toilless.sops.msk_cpu_headroom.decide`): state ok / warning / urgent, shape spike /
   steady rise / sustained (rule in `headroom.py`), and the action: ask the connect-component team, ask the topics'
   owners, or recommend a larger broker type (`sizing.py`, prices from the config table, source named).
4. `notify_teams`: the request to `connect_component.channel` (#observability-kafka-integration) with the numbers,
   or the question to the topics' owners (unknown owners listed) in the report channel. A dry run posts nothing.
5. `choose_path`: approvals when a resize is recommended and allowed; else the report. A dry run goes to the report.
6. `first_approval`, `second_approval`: two human-in-the-loop approvals (Required Actions, also posted to
   `approval.channel`). No answer in time = Reject.
7. `resize_broker_type`: only if both approved and the two approvers are **different people**; re-reads the cluster
   (ACTIVE, still the decided type), checks the **action gate** (dry run, once per incident from the cluster's marker
   tag, cool-down, circuit breaker, maintenance window), then UpdateBrokerType with the CurrentVersion just read and
   a TargetInstanceType from the allowed list, then the marker tag.
8. `verify_cluster_active`: reschedule-mode sensor until the cluster is ACTIVE with the new type.
9. `report_headroom`: per broker used/headroom/shape, topics, recommendation, what was asked and done.

## Who is told
`infrastructure` (report, owners' question), `observability_kafka_integration` (load request), `urgent` (approvals);
task failures through the shared failure notifier.
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
from toilless.sensors.msk import MskClusterActiveSensor
from toilless.sops.msk_cpu_headroom import steps

DECIDE = "decide_action"


@dag(
    dag_id="msk_cpu_headroom",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # two runs must never resize the same cluster at once
    tags=["sop", "aws", "kafka", "msk"],
    doc_md=__doc__,
    default_args=default_args(owner="sre-data", retries=2, retry_delay=timedelta(minutes=1)),
    params={
        "cluster_arn": optional_param(
            "string",
            "Cluster ARN",
            "arn:aws:kafka:<region>:<account>:cluster/<name>/<uuid>-<n>. Must be one of the configured clusters "
            "when any are configured. Empty: the alert's cluster, else the configured default.",
            maxLength=2048,
        ),
        "allow_resize": optional_param(
            "boolean",
            "Ask to resize",
            "Off: recommend only, never ask for the broker-type change. On is accepted only where the configuration "
            "allows it. Empty: configured.",
        ),
        "approval_timeout_minutes": optional_param(
            "number",
            "Approval timeout (minutes)",
            "How long to wait for each of the two approvals; no answer = Reject. Empty: configured (60).",
            exclusiveMinimum=0,
        ),
        "dry_run": dry_run_param(),
        "alert": alert_param(),
    },
)
def msk_cpu_headroom() -> None:
    @task(multiple_outputs=False)
    def resolve_settings(**context: Any) -> dict[str, Any]:
        """Configuration, Params (tighten only) and the run's cluster."""
        return steps.resolve_settings(dict(context["params"]), str(context["run_id"]))

    @task(multiple_outputs=False)
    def measure_cpu(settings: dict[str, Any]) -> dict[str, Any]:
        """Broker CPU over the last hour and 7 days, per-topic bytes in."""
        return steps.measure_cpu(settings)

    @task(multiple_outputs=False)
    def decide_action(settings: dict[str, Any], measured: dict[str, Any]) -> dict[str, Any]:
        """State, shape and action (pure logic in toilless.sops.msk_cpu_headroom.decide)."""
        return steps.decide_action(settings, measured)

    @task(multiple_outputs=False)
    def notify_teams(settings: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any]:
        """Ask the connect-component team or the topics' owners (nothing in a dry run)."""
        return steps.notify_teams(settings, decision)

    @task.branch
    def choose_path(settings: dict[str, Any], decision: dict[str, Any]) -> str:
        """Two approvals for a recommended resize, else the report."""
        return steps.choose_path(settings, decision)

    @task(multiple_outputs=True)
    def resize_broker_type(settings: dict[str, Any], decision: dict[str, Any], **context: Any) -> dict[str, Any]:
        """Two different approvers, the gate, then UpdateBrokerType once per incident."""
        return steps.resize_broker_type(settings, decision, context)

    @task(trigger_rule="none_failed_min_one_success", multiple_outputs=False)
    def report_headroom(
        settings: dict[str, Any], decision: dict[str, Any], notices: dict[str, Any], **context: Any
    ) -> dict[str, Any]:
        """Per broker headroom, topics, recommendation, what was asked and done."""
        return steps.report_headroom(context, settings, decision, notices)

    settings = resolve_settings()
    measured = measure_cpu(settings)
    decision = decide_action(settings, measured)
    notices = notify_teams(settings, decision)
    path = choose_path(settings, decision)
    approval_args = {
        "body": f"{{{{ ti.xcom_pull(task_ids='{DECIDE}')['approval_body'] }}}}",
        "timeout_minutes": f"{{{{ ti.xcom_pull(task_ids='{DECIDE}')['approval_timeout_minutes'] }}}}",
        "notifiers": [SlackApprovalRequestNotifier(config_name=steps.CONFIG)],
        # Re-asking after a failure would post a second request; a failed ask is reported by the failure notifier.
        "retries": 0,
    }
    first = TimedApprovalOperator(
        task_id="first_approval",
        subject=f"{{{{ ti.xcom_pull(task_ids='{DECIDE}')['approval_subject'] }}}}",
        **approval_args,
    )
    second = TimedApprovalOperator(
        task_id="second_approval",
        subject=f"{{{{ ti.xcom_pull(task_ids='{DECIDE}')['second_approval_subject'] }}}}",
        **approval_args,
    )
    resize = resize_broker_type(settings, decision)
    verify = MskClusterActiveSensor(
        task_id="verify_cluster_active",
        resize=resize,
        aws_conn_id=resize["aws_conn_id"],
        region_name=resize["region"],
        poke_interval=120,
        timeout=4 * 60 * 60,
    )
    report = report_headroom(settings, decision, notices)

    notices >> path
    path >> first >> second >> resize >> verify >> report
    path >> report


msk_cpu_headroom()
