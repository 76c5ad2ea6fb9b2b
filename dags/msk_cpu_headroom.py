"""
# Msk cpu headroom (`msk_cpu_headroom`)

What this SOP is for, in a paragraph: the symptom it answers, what it decides, what it may change. (Written by the
scaffold: replace this paragraph and keep the sections.)

## When it runs
- **Schedule**: daily at 06:00 UTC.
- **Alert**: through the alert intake when a route in `include/alert_routes.yaml` names `msk_cpu_headroom` (Param `alert`).
- **Manual**: with the Params below. Params may only **tighten** the configured policy (a higher `threshold`,
  `allow_action` off); a Param that would loosen it fails the run at once: that is a configuration change.

## Steps
1. `resolve_settings`: `include/config/msk_cpu_headroom.yaml` + Variable `toilless_msk_cpu_headroom` + the run's Params.
2. `measure_target`: the value to judge (a stand-in until a hook reads the real system).
3. `decide_action`: the decision (`toilless.sops.msk_cpu_headroom.decide`): act when the value reaches the threshold.
4. `act_if_allowed`: acts only when the **action gate** (`toilless.common.gate`) allows it at that moment: not a dry
   run, past the cool-down, circuit breaker closed, outside the maintenance window; otherwise it says why.
5. `report_outcome`: what was found and done.

## Who is told
- `non_urgent`: the report of every run (`report_channel` in the YAML).
- Task failures: the shared Slack failure notifier (`default_args`).

## Safety
- `dry_run` reports what would be done and changes nothing.
- Every action passes the action gate right before it happens, and is recorded for the cool-down and the circuit
  breaker.
- Invalid settings or Params fail the run at once, without retries, before anything is read or changed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Param, dag

from toilless.common.dag_defaults import default_args, task
from toilless.common.params import alert_param, dry_run_param
from toilless.sops.msk_cpu_headroom import steps


@dag(
    dag_id="msk_cpu_headroom",
    schedule="0 6 * * *",
    catchup=False,
    max_active_runs=1,  # two runs must never act on the same target at once
    tags=["sop"],
    doc_md=__doc__,
    default_args=default_args(owner="sre", retries=2, retry_delay=timedelta(minutes=1)),
    params={
        "dry_run": dry_run_param(),
        "alert": alert_param(),
        "threshold": Param(
            None,
            type=["null", "number"],
            minimum=0,
            title="Threshold",
            description="Act when the measured value reaches this. Empty: the configured value; may only be raised.",
        ),
        "allow_action": Param(
            None,
            type=["null", "boolean"],
            title="Allow the action",
            description="Off: measure and report only. Empty: configured. A run can switch the action off, never on.",
        ),
    },
)
def msk_cpu_headroom():
    @task
    def resolve_settings(params: dict[str, Any] | None = None) -> dict[str, Any]:
        return steps.resolve_settings(dict(params or {}))

    @task
    def measure_target(settings: dict[str, Any]) -> dict[str, Any]:
        return steps.measure_target(settings)

    @task
    def decide_action(settings: dict[str, Any], measurement: dict[str, Any]) -> dict[str, Any]:
        return steps.decide_action(settings, measurement)

    @task
    def act_if_allowed(settings: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any]:
        return steps.act_if_allowed(settings, decision)

    @task
    def report_outcome(
        settings: dict[str, Any], decision: dict[str, Any], outcome: dict[str, Any], **context: Any
    ) -> dict[str, Any]:
        return steps.report_outcome(context, settings, decision, outcome)

    settings = resolve_settings()
    measurement = measure_target(settings)
    decision = decide_action(settings, measurement)
    outcome = act_if_allowed(settings, decision)
    report_outcome(settings, decision, outcome)


msk_cpu_headroom()
