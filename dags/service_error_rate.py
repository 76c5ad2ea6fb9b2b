"""
# Service error rate (`service_error_rate`)

SOP: SOPS.md, "Application down, restart and rollback" (service runbooks: high error rate, 5xx > 5% or p95 latency
> 500 ms). A service on Kubernetes answers too many 5xx or too slowly. The on-call rule it encodes: **measure how
widespread it is first**: one error at night is acknowledged and left; many are investigated. Then it checks pod
health and the database and Redis the service uses, decides **noise / degraded / failing**, restarts only the
Deployment that owns unhealthy pods, scales a saturated Deployment within bounds, or tells the owning team with the
evidence; and it verifies through the same PromQL after acting.

## When it runs
- **Alert**: a 5xx-ratio or latency alert through the alert intake (route `service-error-rate` in
  `include/alert_routes.yaml`; the alert's `namespace` and `deployment` labels choose the service).
- **Manual**: with the Params below. Params may only **tighten** the configuration (higher thresholds, a lower
  `max_replicas`, restart or scale off); a Param that would loosen it fails the run at once.

## Steps
1. `resolve_settings`: `include/config/service_error_rate.yaml` + Variable `toilless_service_error_rate` + Params.
   Only a service listed under `services` is accepted; the configured PromQL is checked offline (structure,
   placeholders). Bad input fails here, not retried, with nothing read or changed.
2. `measure_errors`: the configured PromQL through the Prometheus HTTP API (Connection `prometheus_default`):
   requests, 5xx, p95 latency and saturation **per pod** over the last hour. A query Prometheus refuses fails at
   once with its message (not retried); Prometheus down is retried.
3. `check_pods`: the Deployment (unknown: clear error, nothing changed), its pods' health (ready, phase, restarts,
   CrashLoopBackOff, OOMKilled, image pull errors) and which pods it owns (Pod -> ReplicaSet -> Deployment).
4. `check_dependencies`: a TCP connect and an authenticated ping (PostgreSQL `SELECT 1`, Redis `PING`) to each
   dependency of the service, from its Airflow Connection.
5. `decide_action` (`toilless.sops.service_error_rate.verdict`): **noise** -> acknowledged, nothing done; a
   dependency down -> report (a restart would not help); unhealthy pods -> **restart** their owning Deployment;
   saturated, healthy pods -> **scale** up by `scale.step` within `max_replicas`; otherwise -> report to the owner.
6. `act_on_service`: the restart (`kubectl rollout restart`'s patch) or the scale (`kubectl scale`'s patch of the
   scale subresource), only when the **action gate** allows it at that moment: not a dry run, outside the
   maintenance window, past the cool-down (`gate.cooldown_minutes` for restarts, `scale.cooldown_minutes` for
   scale-ups), circuit breaker closed, and **once per incident**: the incident is recorded on the Deployment with
   the action and re-read right before acting, so a retried task never acts twice.
7. `verify_recovery`: reschedule-mode sensor (no worker slot held while waiting): once `verify.window_seconds` have
   passed since the action, the same PromQL over that window; recovered when the 5xx ratio and p95 are under the
   degraded thresholds, or not recovered after `verify.timeout_minutes`.
8. `report_outcome`: the evidence and what was done.

## Who is told
- `report_channel` (`ops`): every run.
- The service's `owner_channel`: when it must look (a dependency down, errors from healthy pods, an action switched
  off or at the cap) or the action did not help.
- `escalation_channel` (`urgent`): a failing service that no action has fixed.
- Task failures: the shared Slack failure notifier.

## Safety
- `dry_run` (and the maintenance window, where the intake forces a dry run) reports what would be done and changes
  nothing. Every action passes `toilless.common.gate.check_action` right before it happens.
- Only configured services, only their own Deployment, replicas never above `max_replicas`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Param, PokeReturnValue, dag

from toilless.common.dag_defaults import default_args, task
from toilless.common.params import alert_param, dry_run_param
from toilless.sops.service_error_rate import steps


@dag(
    dag_id="service_error_rate",
    schedule=None,
    catchup=False,
    max_active_runs=1,  # two runs must never act on the same Deployment at once
    tags=["sop", "kubernetes", "prometheus"],
    doc_md=__doc__,
    default_args=default_args(owner="sre", retries=2, retry_delay=timedelta(minutes=1)),
    params={
        "dry_run": dry_run_param(),
        "alert": alert_param(),
        "namespace": Param(
            None,
            type=["null", "string"],
            maxLength=63,
            title="Namespace",
            description="The service's namespace (with deployment). Empty: the configured default_service.",
        ),
        "deployment": Param(
            None,
            type=["null", "string"],
            maxLength=253,
            title="Deployment",
            description="The service's Deployment (with namespace); must be listed under services in the config.",
        ),
        "min_errors": Param(
            None,
            type=["null", "number"],
            minimum=0,
            title="Minimum 5xx before investigating",
            description="Fewer 5xx in the window is noise. Empty: configured; may only be raised.",
        ),
        "error_ratio_degraded": Param(
            None,
            type=["null", "number"],
            minimum=0,
            maximum=1,
            title="Degraded 5xx ratio",
            description="0..1. Empty: configured; may only be raised.",
        ),
        "max_replicas": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            title="Most replicas",
            description="Scale at most to this. Empty: the service's max_replicas; may only be lowered.",
        ),
        "allow_restart": Param(
            None,
            type=["null", "boolean"],
            title="Allow the restart",
            description="Off: report instead of restarting. Empty: configured. A run can switch it off, never on.",
        ),
        "allow_scale": Param(
            None,
            type=["null", "boolean"],
            title="Allow scaling",
            description="Off: report instead of scaling. Empty: configured. A run can switch it off, never on.",
        ),
    },
)
def service_error_rate():
    @task
    def resolve_settings(params: dict[str, Any] | None = None, **context: Any) -> dict[str, Any]:
        return steps.resolve_settings(dict(params or {}), context)

    @task
    def measure_errors(settings: dict[str, Any]) -> dict[str, Any]:
        return steps.measure_errors(settings)

    @task
    def check_pods(settings: dict[str, Any]) -> dict[str, Any]:
        return steps.check_pods(settings)

    @task
    def check_dependencies(settings: dict[str, Any]) -> list[dict[str, Any]]:
        return steps.check_dependencies(settings)

    @task
    def decide_action(
        settings: dict[str, Any], measurement: dict[str, Any], pods: dict[str, Any], dependencies: list[dict[str, Any]]
    ) -> dict[str, Any]:
        return steps.decide(settings, measurement, pods, dependencies)

    @task
    def act_on_service(settings: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any]:
        return steps.act(settings, decision)

    @task.sensor(mode="reschedule", poke_interval=30, timeout=timedelta(hours=2).total_seconds())
    def verify_recovery(settings: dict[str, Any], outcome: dict[str, Any]) -> PokeReturnValue:
        done, result = steps.verify(settings, outcome)
        return PokeReturnValue(is_done=done, xcom_value=result)

    @task
    def report_outcome(
        settings: dict[str, Any],
        measurement: dict[str, Any],
        pods: dict[str, Any],
        dependencies: list[dict[str, Any]],
        decision: dict[str, Any],
        outcome: dict[str, Any],
        verification: dict[str, Any],
        **context: Any,
    ) -> dict[str, Any]:
        return steps.report(context, settings, measurement, pods, dependencies, decision, outcome, verification)

    settings = resolve_settings()
    measurement = measure_errors(settings)
    pods = check_pods(settings)
    dependencies = check_dependencies(settings)
    measurement >> [pods, dependencies]  # how widespread first
    decision = decide_action(settings, measurement, pods, dependencies)
    outcome = act_on_service(settings, decision)
    verification = verify_recovery(settings, outcome)
    report_outcome(settings, measurement, pods, dependencies, decision, outcome, verification)


service_error_rate()
