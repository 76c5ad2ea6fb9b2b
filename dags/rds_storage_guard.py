"""# RDS storage guard

SOP: *RDS storage guard* (SOPS.md). When a database is critically low on storage (90% used) grow its storage to prevent
disruption, but only after evaluating it: **an increase is permanent**, RDS cannot shrink allocated storage. Then
manage the data and plan from the growth trend.

## What fires it
- **Schedule**: every 30 minutes, for the instances in `include/config/rds_storage_guard.yaml` (ids, else a tag filter,
  else every instance in the region).
- **Alert**: the RDS low-storage alert, through the alert intake; the instance id comes from the alert's labels
  (`dbinstance_identifier`, `DBInstanceIdentifier`, ... see `alert_instance_labels`).
- **Manual**: Params below (instance ids or a tag filter, region, thresholds, growth step, cap, automatic growth,
  approval timeout, dry run).

## Steps
1. `measure_storage`: per instance, `describe_db_instances` (paginated): allocated storage, storage autoscaling limit
   (MaxAllocatedStorage), storage type, Multi-AZ, status, pending modifications; the last storage change (the guard's
   marker tag on the instance, or an RDS event "modification to allocated storage"); CloudWatch `FreeStorageSpace`
   (GetMetricData, hourly minimum over the last `metric_history_days`).
2. `decide_action` (pure, `toilless.sops.rds_storage_guard.growth_plan.decide`): used %, growth rate (least squares
   since the last jump in free space), days until full; state **ok / warning / critical** (by used % or by days
   until full); action:
   - *none*; *recommend_autoscaling* (warning, autoscaling off or at its limit);
   - *request_approval* to grow to N GiB, or *grow_now* when policy allows automatic growth (not inside the maintenance
     window);
   - *blocked* with the reason: instance not available, storage optimization in progress, a change pending, RDS's six
     hour cool-down after a storage change, or the cap reached.

   The target is at least the growth step (>= RDS's 10% minimum) and enough for `headroom_days` at the measured rate
   ending at most `target_used_pct` full; never above the cap (nor the storage type's maximum). With storage autoscaling
   on, its limit is raised with the allocation when needed (still within the cap).
3. `inspect_table_growth`: for instances at warning or worse with a database Connection `rds_<instance_id>`, the largest
   tables and their growth since the last look, so the report says where the space goes (SOP "Data Management").
4. `choose_path`: approval, automatic growth, or straight to the report (nothing to grow, or **dry run**).
5. `request_approval`: a person approves or rejects in Airflow (Required Actions). The request, also posted to Slack
   (`approval.channel`, default `urgent`), says what changes, that it is permanent, and the monthly cost delta (price per
   GiB-month of the storage type, x2 for Multi-AZ). No answer within the timeout counts as Reject: nothing changes.
   One request covers every instance of the run that needs approval; a Reject also stops that run's automatic
   growths (the next run decides them again).
6. `expand_allocated_storage`: re-reads each instance right before acting; does nothing if it is already at (or
   growing to) the target; refuses if the allocation changed since the decision; then checks the **action gate**
   (`toilless.common.gate`) at that moment: dry run, RDS's cool-down since the last storage change, and for automatic
   growth the maintenance window and the circuit breaker (`gate.circuit_breaker`: at most N automatic growths per
   instance per window). A refusal is reported with its reason and when it would be allowed. Then
   `modify_db_instance(AllocatedStorage=target, ApplyImmediately=True)`, and only once RDS accepted it the marker tag
   (so a refused request never blocks the next run). The target is absolute, so a retry after a crash between modify
   and verify never grows twice. Every value sent to AWS is checked against the API's documented contract first
   (`toilless.common.aws_contracts`).
7. `verify_expansion`: reschedule-mode sensor (no worker slot held) until the allocation is at the target, no change is
   pending and the instance is available (or optimizing storage).
8. `report_storage`: Slack (`report.channel`, default `infrastructure`): per instance state, forecast, action and
   outcome, the largest tables; a PNG of used storage and its forecast against the allocation for every instance at
   warning or worse (uploaded when the Slack API Connection exists, else saved under `report.chart_dir`). Scheduled runs
   with everything ok stay quiet unless `report.post_when_all_ok`; a scheduled report identical in states and actions
   to the last one is repeated only after `report.repeat_unchanged_hours` (24).

## Who is told
`infrastructure` gets the report, `urgent` the approval request; task failures go through the shared failure notifier.

## Settings
`include/config/rds_storage_guard.yaml`, overridden by the Variable `toilless_rds_storage_guard`. Params may only
**tighten** the configured policy for one run (`auto_grow` off, a lower `cap_gib` or `growth_step_pct`, a higher
`critical_pct` when automatic growth is on); a Param that would loosen it fails the run at once, before anything is
read or changed: loosening is a configuration change, reviewed like code.
The same holds for **scope**: the `instance_ids`, `tag_filter` and `region` Params may only narrow the configured
instances / tag filter / region (anything outside is refused at once,
`toilless.sops.rds_storage_guard.scoping.run_scope`); where the configuration sets no explicit scope, automatic
growth applies only to what the configuration selects, and growth of an instance a Param chose needs a person's
approval. `max_active_runs=1`: two runs must never decide on the same instance at once.
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
from toilless.sensors.rds import RdsStorageExpandedSensor
from toilless.sops.rds_storage_guard import steps

DECIDE = "decide_action"


@dag(
    dag_id="rds_storage_guard",
    schedule="*/30 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["sop", "aws", "rds", "storage"],
    doc_md=__doc__,
    default_args=default_args(owner="sre-data", retries=2, retry_delay=timedelta(minutes=1)),
    params={
        # Optional Params (toilless.common.params.optional_param) allow null, so the form does not require them;
        # the steps read null as the default.
        "instance_ids": optional_param(
            "array",
            "Instance ids",
            "RDS DB instance identifiers to check. Only narrows the configured scope: an id outside the "
            "configured instance_ids / tag filter is refused; if none is configured, growth of a chosen "
            "instance needs approval. Empty: the tag filter, else the configured instances.",
            default=[],
            items={"type": "string"},
        ),
        "tag_filter": optional_param(
            "object",
            "Tag filter",
            'Check instances whose tags match, e.g. {"team": "orders"} ("*" = any value). Only narrows the '
            "configured scope (adds conditions); with none configured, growth needs approval.",
            default={},
        ),
        "region": optional_param(
            "string",
            "Region",
            "AWS region. Empty: the configured region, else the AWS Connection's. A region other than the "
            "configured one is refused; with none configured, growth there needs approval.",
        ),
        "warning_pct": optional_param(
            "number", "Warning threshold (% used)", "Empty: the configured value (80).", minimum=1, maximum=99
        ),
        "critical_pct": optional_param(
            "number",
            "Critical threshold (% used)",
            "Empty: the configured value (90). With automatic growth on it may only be raised; with it off a "
            "lower value only asks for approval sooner.",
            minimum=2,
            maximum=100,
        ),
        "growth_step_pct": optional_param(
            "number",
            "Minimum growth step (%)",
            "Smallest increase in percent of the allocation; RDS requires at least 10. May only be lowered "
            "below the configured step. Empty: configured.",
            minimum=10,
        ),
        "cap_gib": optional_param(
            "integer",
            "Cap (GiB)",
            "Never allocate more than this; may only lower the configured cap (2000). Empty: configured.",
            minimum=1,
        ),
        "auto_grow": optional_param(
            "boolean",
            "Grow automatically",
            "Off: ask for approval even where policy grows automatically. On is only accepted when the "
            "configured policy already grows automatically (Params never loosen policy). Empty: configured.",
        ),
        "approval_timeout_minutes": optional_param(
            "number",
            "Approval timeout (minutes)",
            "How long to wait for an approval; no answer = Reject. Empty: configured (60).",
            exclusiveMinimum=0,
        ),
        "dry_run": dry_run_param(),
        "alert": alert_param(),
    },
)
def rds_storage_guard() -> None:
    # multiple_outputs=False: a dict return type would otherwise store every key twice in XCom.
    @task(multiple_outputs=False)
    def measure_storage(**context: Any) -> dict[str, Any]:
        """Describe the instances and read their FreeStorageSpace history."""
        return steps.measure_storage(context)

    @task(multiple_outputs=False)
    def decide_action(measured: dict[str, Any], **context: Any) -> dict[str, Any]:
        """Forecast and decide per instance (pure logic in toilless.sops.rds_storage_guard.growth_plan)."""
        return steps.decide_action(measured, context)

    @task(multiple_outputs=False)
    def inspect_table_growth(plan: dict[str, Any]) -> dict[str, Any]:
        """Largest tables and their growth for instances at warning or worse that have a database Connection."""
        return steps.inspect_table_growth(plan)

    @task.branch
    def choose_path(plan: dict[str, Any]) -> str:
        """Approval, automatic growth, or straight to the report (nothing to grow, or a dry run)."""
        return steps.choose_path(plan)

    @task(trigger_rule="none_failed_min_one_success", multiple_outputs=True)
    def expand_allocated_storage(plan: dict[str, Any], measured: dict[str, Any], **context: Any) -> dict[str, Any]:
        """Grow each approved or automatic instance to its target, exactly once."""
        return steps.expand_allocated_storage(plan, measured, context)

    @task(trigger_rule="none_failed_min_one_success", multiple_outputs=False)
    def report_storage(
        plan: dict[str, Any], measured: dict[str, Any], tables: dict[str, Any], **context: Any
    ) -> dict[str, Any]:
        """Post per-instance state, forecast, action and outcome, with charts for warning and worse."""
        return steps.report_storage(context, plan=plan, measured=measured, tables=tables)

    measured = measure_storage()
    plan = decide_action(measured)
    tables = inspect_table_growth(plan)
    path = choose_path(plan)
    approval = TimedApprovalOperator(
        task_id="request_approval",
        subject=f"{{{{ ti.xcom_pull(task_ids='{DECIDE}')['approval_subject'] }}}}",
        body=f"{{{{ ti.xcom_pull(task_ids='{DECIDE}')['approval_body'] }}}}",
        timeout_minutes=f"{{{{ ti.xcom_pull(task_ids='{DECIDE}')['approval_timeout_minutes'] }}}}",
        notifiers=[SlackApprovalRequestNotifier(config_name=steps.CONFIG)],
        # Re-asking after a failure would post a second request; a failed ask is reported by the failure notifier.
        retries=0,
    )
    expansion = expand_allocated_storage(plan, measured)
    verify = RdsStorageExpandedSensor(
        task_id="verify_expansion",
        expansions=expansion["expansions"],
        aws_conn_id=expansion["aws_conn_id"],
        region_name=expansion["region"],
        poke_interval=60,
        timeout=3 * 60 * 60,
    )
    report = report_storage(plan, measured, tables)

    path >> approval >> expansion
    path >> expansion
    expansion >> verify >> report
    path >> report


rds_storage_guard()
