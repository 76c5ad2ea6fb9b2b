"""
# Redis connection issues (`redis_connections`)

SOP: SOPS.md, "Data stores", Redis connection issues (max connections, pool, network). This DAG measures how close a
Redis is to `maxclients`, who holds its connections, advises on pool sizes, and ends idle connections of configured
client names only, within policy. Details: docs/redis_connections.md.

## When it runs
- **Schedule**: hourly at :40.
- **Alert**: `RedisTooManyConnections` or `RedisRejectedConnections` through the alert intake (Param `alert`).
- **Manual**: with the Params below. Params may only **tighten** the configured policy (a higher `idle_seconds`, a
  lower `max_clients_per_run`, fewer `client_names`, `allow_kill` off); a Param that would loosen it fails the run.

## Steps
1. `resolve_settings`: `include/config/redis_connections.yaml` + Variable `toilless_redis_connections` + the run's
   Params; the Connection `redis_conn_id` must exist and be of type `redis`. Bad input fails here, before Redis is
   touched.
2. `diagnose_connections`: `INFO clients` (connected vs maxclients, blocked clients), `INFO stats` twice (rejected
   connections, and their rate now), `CLIENT LIST` (bounded) grouped by client name, address, idle time and last
   command; pool advice per client name against `pools` in the YAML.
3. `kill_idle_clients`: only under pressure (or always, by configuration), only clients whose name is in
   `kill.client_names`, idle at least `kill.idle_seconds`: `CLIENT KILL ID`, at most `kill.max_clients_per_run`
   (all tries of the run together, reserved before acting). Never Toilless's own connection, never replicas,
   monitors, subscribers, blocked clients or clients inside MULTI. Each batch passes the **action gate** (dry run,
   maintenance window, cool-down, circuit breaker); each connection is re-read (`CLIENT LIST ID`) right before it
   is ended, and left alone if it was used or renamed meanwhile.
4. `report_outcome`: level, findings, advice, the groups, who was ended and why, to `non_urgent`.

## Who is told
- `non_urgent`: the report of every run (`report_channel`).
- Task failures: the shared Slack failure notifier (`default_args`).

## Safety
- Dry run by default (`dry_run: true` in the YAML); a run can ask for a dry run, never switch it off.
- Connections of names not configured are never ended; nothing inside the maintenance window; at most N per run.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import dag

from toilless.common.dag_defaults import default_args, task
from toilless.common.params import alert_param, dry_run_param, optional_param
from toilless.sops.redis_connections import steps


@dag(
    dag_id="redis_connections",
    schedule="40 * * * *",
    catchup=False,
    max_active_runs=1,  # two runs must never share one Redis's budget at once
    tags=["sop", "redis", "data-stores", "alert-triggered"],
    doc_md=__doc__,
    default_args=default_args(owner="sre-datastores", retries=2, retry_delay=timedelta(minutes=1)),
    params={
        "dry_run": dry_run_param(),
        "alert": alert_param(),
        "allow_kill": optional_param(
            "boolean",
            "Allow ending idle connections",
            "Off: diagnose and advise only. Empty: configured (kill.allow). A run can switch it off, never on.",
        ),
        "idle_seconds": optional_param(
            "integer",
            "Idle time before a connection is ended (seconds)",
            "May only be raised above the configured value.",
            minimum=1,
        ),
        "max_clients_per_run": optional_param(
            "integer",
            "Connections ended at most",
            "In this run, retries included. May only be lowered.",
            minimum=1,
        ),
        "client_names": optional_param(
            "array",
            "Client names",
            "End idle connections only of these configured client names. Empty: all configured.",
            items={"type": "string", "minLength": 1, "maxLength": 128},
            maxItems=100,
        ),
    },
)
def redis_connections():
    @task
    def resolve_settings(params: dict[str, Any] | None = None) -> dict[str, Any]:
        return steps.resolve_settings(dict(params or {}))

    @task
    def diagnose_connections(settings: dict[str, Any]) -> dict[str, Any]:
        return steps.diagnose_connections(settings)

    @task
    def kill_idle_clients(settings: dict[str, Any], diagnosis: dict[str, Any], **context: Any) -> dict[str, Any]:
        return steps.kill_idle_clients(settings, diagnosis, context)

    @task
    def report_outcome(
        settings: dict[str, Any], diagnosis: dict[str, Any], outcome: dict[str, Any], **context: Any
    ) -> dict[str, Any]:
        return steps.report_outcome(context, settings, diagnosis, outcome)

    settings = resolve_settings()
    diagnosis = diagnose_connections(settings)
    outcome = kill_idle_clients(settings, diagnosis)
    report_outcome(settings, diagnosis, outcome)


redis_connections()
