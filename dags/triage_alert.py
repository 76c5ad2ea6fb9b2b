"""
# Alert triage (`triage_alert`)

The on-call rule "if it is just one error, acknowledge and go back to sleep", before anyone is woken. For an alert
whose route names a triage rule (`include/triage_rules.yaml`), the alert intake starts this DAG instead of the
runbook. It measures how widespread the problem is (the rule's PromQL, e.g. 5xx over the last hour), looks for
known causes (a log pattern such as the expired-Vault-token error, with the pods' health), and decides:

- **noise** (at most the rule's `noise_at_most`): acknowledged in Slack with the evidence and the reason, and that
  exact alert (matchers = its labels) silenced in Alertmanager for the rule's time, at most `max_silence_minutes`;
- **known cause** (its log pattern found, pods healthy): dismissed with the documented response; the owner is told;
- **real** (more than that, unhealthy pods, or evidence that could not be read): the runbook starts, with the run
  id and conf the intake would have given it, and the verdict goes to the alert's channel (prod: urgent).

## When it runs
- **Alert**: started by the alert intake for a route with `triage: <rule>` (Params `alert` and `triage`).
  Not scheduled; a manual run needs both Params.

## Steps
1. `resolve_settings`: `include/config/triage_alert.yaml` + Variable `toilless_triage_alert` + Params (they only
   tighten: `allow_silence` off, a lower `max_silence_minutes`), the alert and its rule.
2. `gather_evidence`: the rule's PromQL (Prometheus), the known causes' pod log and pod health (Kubernetes).
3. `decide_verdict`: noise / known cause / real (`toilless.sops.triage_alert.decide`).
4. `silence_noise`: noise only: one Alertmanager silence (API v2), through the action gate, recorded in the list
   of silences Toilless created (Variable `toilless_triage_alert_silences`).
5. `start_runbook`: real only: the routed runbook, with the intake's deterministic run id.
6. `report_outcome`: the verdict, evidence and what was done; a known cause also to its owner's channel.

## Who is told
- The alert's channel (`urgent` for prod, `report_channel` otherwise): every verdict.
- A known cause's `owner_channel`: the documented response.
- Task failures: the shared Slack failure notifier (`default_args`).

## Safety
- Once per incident: the intake starts one triage run per firing alert; the runbook's run id is the alert's, so a
  retried task meets the existing run; a silence names its run, and a retry reuses the one already created.
- `dry_run` and the maintenance window silence nothing; a dry run starts no runbook.
- A silence longer than `max_silence_minutes`, or one that breaks Alertmanager's contract, is refused before
  anything is sent: the run reports it and fails.
- Evidence that could not be read never makes an alert noise: it is treated as real.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Param, dag

from toilless.common.dag_defaults import default_args, task
from toilless.common.params import alert_param, dry_run_param
from toilless.operators.runbook import TriggerRunbookOperator
from toilless.sops.triage_alert import steps


@dag(
    dag_id="triage_alert",
    schedule=None,
    catchup=False,
    max_active_runs=16,  # one run per firing alert; the intake holds one per target
    tags=["sop", "alerts"],
    doc_md=__doc__,
    default_args=default_args(owner="sre", retries=2, retry_delay=timedelta(seconds=30)),
    params={
        "dry_run": dry_run_param(),
        "alert": alert_param(),
        "triage": Param(
            None,
            type=["null", "object"],
            title="Triage rule and runbook",
            description="Set by the alert intake: rule, route, target, runbook_dag_id, runbook_run_id, runbook_conf.",
        ),
        "allow_silence": Param(
            None,
            type=["null", "boolean"],
            title="Allow silencing noise",
            description="Off: report only, silence nothing. Empty: configured. A run can switch it off, never on.",
        ),
        "max_silence_minutes": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            title="Longest silence (minutes)",
            description="Empty: the configured maximum; may only be lowered.",
        ),
    },
)
def triage_alert():
    @task
    def resolve_settings(params: dict[str, Any] | None = None) -> dict[str, Any]:
        return steps.resolve_settings(dict(params or {}))

    @task
    def gather_evidence(settings: dict[str, Any]) -> dict[str, Any]:
        return steps.gather_evidence(settings)

    @task
    def decide_verdict(settings: dict[str, Any], evidence: dict[str, Any]) -> dict[str, Any]:
        return steps.decide_verdict(settings, evidence)

    @task
    def silence_noise(settings: dict[str, Any], verdict: dict[str, Any], **context: Any) -> dict[str, Any]:
        return steps.silence_noise(settings, verdict, str(context["run_id"]))

    @task(trigger_rule="none_failed")
    def report_outcome(
        settings: dict[str, Any], verdict: dict[str, Any], silence: dict[str, Any], **context: Any
    ) -> dict[str, Any]:
        return steps.report_outcome(context, settings, verdict, silence)

    settings = resolve_settings()
    evidence = gather_evidence(settings)
    verdict = decide_verdict(settings, evidence)
    silence = silence_noise(settings, verdict)
    start_runbook = TriggerRunbookOperator(task_id="start_runbook", decision_task_id="decide_verdict")
    verdict >> start_runbook
    report = report_outcome(settings, verdict, silence)
    start_runbook >> report


triage_alert()
