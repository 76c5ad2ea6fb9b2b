"""
# Release capacity plan (`release_capacity_plan`)

SOP: SOPS.md, "Release capacity planning". Releases used to add resources by hand in the release window, and the
app was overloaded and went down; the hand-written as-built had `512mb`, `Replicas`/`ApiVersion` with capitals and a
container named `order_processor`. This DAG sizes a release from its load figures, renders the manifests as data
(validated against the Kubernetes schema offline), writes the as-built section, and, only when configured and a
person approves, applies the patch.

## When it runs
- **Manual** (typed form), or from a release pipeline through the REST API (`POST /api/v2/dags/release_capacity_plan/dagRuns`
  with the Params as `conf`). No schedule, no alert.
- Params may only **tighten** the configured policy (more `headroom_pct`, fewer `users_per_replica`, a lower
  `max_replicas`, `apply`/`file_issue` off, a shorter approval wait); the namespace must be in `allowed_namespaces`.
  Anything else fails the run at once: loosening is a configuration change.

## Steps
1. `resolve_settings`: `include/config/release_capacity_plan.yaml` + Variable `toilless_release_capacity_plan` + the
   Params, every value checked (users, percentages, quantities such as `512mb`, DNS-1123 names such as
   `order_processor` are refused with the rule and a suggestion).
2. `read_current_resources`: each named Deployment through the cncf-kubernetes provider (Connection
   `kubernetes_conn_id`): replicas, requests and limits per container. A Deployment that does not exist fails the run
   (not retried). Current usage from the metrics API (`metrics.source: metrics_api`: PodMetrics, the peak per
   container across the pods), else from the figures' utilisation % (the seed's 85%).
3. `plan_capacity` (pure, `toilless.sops.release_capacity_plan.plan`): replicas = ceil(expected users x (1 + headroom)
   / users per replica), never below the current replicas; memory = used now (utilisation x limit, else request) x
   users per pod after/now x (1 + growth per user) x (1 + headroom), rounded up to `figures.memory_step`; CPU likewise;
   new components from their stated memory and CPU (a fixed amount or a multiple of the app's). Never below what runs
   now. One line of reasoning per before -> after row.
4. `render_manifests`: per Deployment the strategic-merge patch and the manifest after it, the new components'
   Deployments and an optional HorizontalPodAutoscaler (autoscaling/v2); every object validated offline against the
   Kubernetes `kubernetes_version` schema (kubernetes-validate, strict) and the name/quantity contracts.
5. `write_as_built`: the as-built section in the seed's template (stakeholders, code changes by kind with tickets,
   data and system changes with the capacity table, design decisions, tests, deployment notes, the files), saved to
   `as_built_dir/<release>/as-built.md`, summarised to Slack (`report_channel`), and filed as a GitHub issue when
   `github.enabled` (once per plan: found again by its marker).
6. `choose_path`: nothing more unless `apply.enabled` (off by default) and something changes; a dry run goes to the
   gate only.
7. `request_approval`: a person approves in Airflow (Required Actions); the request is also posted to `approval.channel`.
   No answer within the timeout counts as Reject: nothing changes.
8. `apply_capacity`: per Deployment, re-read right before acting; the **action gate** (dry run, once per plan: the
   plan's marker annotation, circuit breaker, maintenance window); refused if its resources changed since the plan;
   replicas never below what runs now; one patch that carries the change and the marker (so a retry never applies twice).
9. `verify_rollout`: waits until the controller observed the change and every replica is updated and available.
10. `report_outcome`: what was applied and whether it rolled out (`urgent` if it did not).

## Who is told
- `report_channel` (`non_urgent`): the plan's summary; the outcome of an apply. `urgent`: approval requests, a rollout
  that did not finish. Task failures: the shared Slack failure notifier.

## Safety
- The plan, the manifests and the as-built change nothing. Applying is off unless configured, needs a person's
  approval, passes the gate at the moment it acts, and is recorded on the Deployment in the same patch.
- `dry_run` reports what would be done and changes nothing.
- Invalid settings or Params fail the run at once, without retries, before anything is read or changed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import dag

from toilless.common.dag_defaults import default_args, task
from toilless.common.params import dry_run_param, optional_param
from toilless.notifiers.slack_approval import SlackApprovalRequestNotifier
from toilless.operators.approval import TimedApprovalOperator
from toilless.sops.release_capacity_plan import steps

_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_TEXT_LIST = {"type": "string", "maxLength": 500}
PLAN = "plan_capacity"
APPROVAL_TEXT = "approval_text"


def _text_list(title: str, description: str) -> Any:
    return optional_param("array", title, description, items=_TEXT_LIST, maxItems=100)


@dag(
    dag_id="release_capacity_plan",
    schedule=None,
    catchup=False,
    max_active_runs=1,  # two runs must never apply to the same Deployments at once
    tags=["sop", "kubernetes", "release", "capacity"],
    doc_md=__doc__,
    default_args=default_args(owner="sre-platform", retries=2, retry_delay=timedelta(minutes=1)),
    params={
        "dry_run": dry_run_param(),
        "release": optional_param(
            "string",
            "Release",
            "The release this plan is for, e.g. 2026.12.1 (letters, digits, '.', '_', '-'). Required.",
            pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
        ),
        "namespace": optional_param(
            "string",
            "Namespace",
            "Namespace of the Deployments; must be one of allowed_namespaces. Empty: the configured one.",
            pattern=_LABEL,
            maxLength=63,
        ),
        "deployments": optional_param(
            "array",
            "Deployments",
            "Deployments serving the release's users. Empty: the configured ones.",
            items={"type": "string", "pattern": _SUBDOMAIN, "maxLength": 253},
            maxItems=100,
        ),
        "current_concurrent_users": optional_param(
            "integer",
            "Concurrent users now",
            "Concurrent users the Deployments serve today (the seed: 1300). Required.",
            minimum=1,
        ),
        "expected_concurrent_users": optional_param(
            "integer",
            "Concurrent users after the release",
            "Concurrent users the release must serve (the seed: 2600). Required.",
            minimum=0,
        ),
        "users_per_replica": optional_param(
            "integer",
            "Users per replica",
            "Concurrent users one replica serves; may only be lowered below the configured (load-tested) 500.",
            minimum=1,
        ),
        "headroom_pct": optional_param(
            "number",
            "Headroom (%)",
            "Extra capacity on top of the expected users; may only be raised above the configured value (0).",
            minimum=0,
            maximum=1000,
        ),
        "max_replicas": optional_param(
            "integer", "Replica cap", "No plan above this; may only lower the configured cap (50).", minimum=1
        ),
        "memory_utilisation_pct": optional_param(
            "number",
            "Memory used now (%)",
            "Share of their memory (limit, else request) the containers use now. Empty: configured (85).",
            exclusiveMinimum=0,
            maximum=1000,
        ),
        "memory_growth_per_user_pct": optional_param(
            "number",
            "Memory growth per user (%)",
            "Extra memory each user needs after the release (the seed: 25). Empty: configured (0).",
            minimum=0,
            maximum=1000,
        ),
        "cpu_utilisation_pct": optional_param(
            "number",
            "CPU used now (%)",
            "Share of their CPU request the containers use now. Empty: configured (100).",
            exclusiveMinimum=0,
            maximum=1000,
        ),
        "cpu_growth_per_user_pct": optional_param(
            "number",
            "CPU growth per user (%)",
            "Extra CPU each user needs after the release. Empty: configured (0).",
            minimum=0,
            maximum=1000,
        ),
        "new_components": optional_param(
            "array",
            "New components",
            'Components the release adds, e.g. {"name": "order-processor", "memory": "1Gi", "cpu_factor_of_app": 2, '
            '"image": "registry/order-processor:1.0"} ("cpu": "500m" for a fixed amount). Names are DNS-1123 '
            "labels, memory a Kubernetes quantity.",
            items={"type": "object"},
            maxItems=20,
        ),
        "stakeholders": _text_list("Stakeholders", "Who owns, approves and is told about the release."),
        "code_changes": optional_param(
            "array",
            "Code changes",
            'By kind with their tickets: {"kind": "feature", "ticket": "SHOP-123", "summary": "..."}.',
            items={"type": "object"},
            maxItems=100,
        ),
        "data_changes": _text_list("Data changes", "Schema and data migrations."),
        "system_changes": _text_list("System changes", "Infrastructure changes besides capacity."),
        "design_notes": _text_list("Design decisions", "Decisions and why."),
        "tests": _text_list("Tests", "Load and functional tests behind the figures."),
        "deployment_notes": _text_list("Deployment notes", "Order of steps, rollback."),
        "apply": optional_param(
            "boolean",
            "Apply after approval",
            "Off: plan and report only. On only when the configuration enables applying (apply.enabled). Empty: "
            "configured.",
        ),
        "file_issue": optional_param(
            "boolean",
            "File the as-built on GitHub",
            "Off: do not file. On only when configured (github.enabled). Empty: configured.",
        ),
        "approval_timeout_minutes": optional_param(
            "number",
            "Approval timeout (minutes)",
            "How long to wait for an approval; no answer = Reject. May only shorten the configured 60.",
            exclusiveMinimum=0,
        ),
    },
)
def release_capacity_plan() -> None:
    @task
    def resolve_settings(params: dict[str, Any] | None = None) -> dict[str, Any]:
        return steps.resolve_settings(dict(params or {}))

    @task
    def read_current_resources(settings: dict[str, Any]) -> dict[str, Any]:
        return steps.read_current_resources(settings)

    @task
    def plan_capacity(settings: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
        return steps.plan_capacity(settings, current)

    @task
    def render_manifests(settings: dict[str, Any], current: dict[str, Any], capacity: dict[str, Any]) -> dict:
        return steps.render_manifests(settings, current, capacity)

    @task
    def write_as_built(
        settings: dict[str, Any], capacity: dict[str, Any], rendered: dict[str, Any], **context: Any
    ) -> dict[str, Any]:
        return steps.write_as_built(context, settings, capacity, rendered)

    @task
    def approval_text(settings: dict[str, Any], capacity: dict[str, Any], rendered: dict[str, Any]) -> dict:
        return steps.approval_text(settings, capacity, rendered)

    @task.branch
    def choose_path(settings: dict[str, Any], capacity: dict[str, Any]) -> list[str]:
        return steps.choose_path(settings, capacity)

    @task(trigger_rule="none_failed_min_one_success")
    def apply_capacity(
        settings: dict[str, Any],
        current: dict[str, Any],
        capacity: dict[str, Any],
        rendered: dict[str, Any],
        **context: Any,
    ) -> dict[str, Any]:
        return steps.apply_capacity(context, settings, current, capacity, rendered)

    @task(retries=0)
    def verify_rollout(settings: dict[str, Any], applied: dict[str, Any]) -> dict[str, Any]:
        return steps.verify_rollout(settings, applied)

    @task(trigger_rule="none_failed")
    def report_outcome(settings: dict[str, Any], **context: Any) -> dict[str, Any]:
        ti = context["ti"]
        applied = ti.xcom_pull(task_ids="apply_capacity")
        verified = ti.xcom_pull(task_ids="verify_rollout")
        return steps.report_outcome(context, settings, applied, verified)

    settings = resolve_settings()
    current = read_current_resources(settings)
    capacity = plan_capacity(settings, current)
    rendered = render_manifests(settings, current, capacity)
    document = write_as_built(settings, capacity, rendered)
    text = approval_text(settings, capacity, rendered)
    path = choose_path(settings, capacity)
    approval = TimedApprovalOperator(
        task_id="request_approval",
        subject=f"{{{{ ti.xcom_pull(task_ids='{APPROVAL_TEXT}')['subject'] }}}}",
        body=f"{{{{ ti.xcom_pull(task_ids='{APPROVAL_TEXT}')['body'] }}}}",
        timeout_minutes=f"{{{{ ti.xcom_pull(task_ids='{APPROVAL_TEXT}')['timeout_minutes'] }}}}",
        notifiers=[SlackApprovalRequestNotifier(config_name=steps.CONFIG)],
        # Re-asking after a failure would post a second request; a failed ask is reported by the failure notifier.
        retries=0,
    )
    applied = apply_capacity(settings, current, capacity, rendered)
    verified = verify_rollout(settings, applied)
    outcome = report_outcome(settings)

    [document, text] >> path
    path >> approval >> applied
    path >> applied
    verified >> outcome


release_capacity_plan()
