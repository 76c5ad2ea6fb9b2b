"""
# PostgreSQL connection exhaustion (`postgres_connections`)

SOP *Data stores*, "too many connections" (SOPS.md): check the active connections, find long-running queries, end
idle connections, raise the pool size if needed. This DAG measures how full the server's connection slots are and who
holds them, lists what runs long or sits idle in a transaction, shows who blocks whom, ends (within policy) sessions
left idle in a transaction, and advises on each application's pool size.

## When it runs
- **Schedule**: every 15 minutes; a scheduled run that finds nothing over a threshold and ends nothing stays quiet.
- **Alert**: `PostgresTooManyConnections` / `PostgresConnectionsHigh` through the alert intake (Param `alert`).
- **Manual**: with the Params below. Params may only **tighten** the configured policy (higher ages, a lower cap,
  ending switched off); a Param that would loosen it fails the run at once: that is a configuration change.

## Steps
1. `resolve_settings`: `include/config/postgres_connections.yaml` + Variable `toilless_postgres_connections` + Params,
   validated (thresholds above 0, the cap at least 1, exact application names): bad input fails here, unchanged.
2. `inspect_connections`, through the SQL Connection `postgres_conn_id` (must be of type `postgres`; the postgres
   provider's PostgresHook, in `toilless.hooks.postgres_admin`), queries in `include/sql/postgres_connections/`:
   client sessions vs `max_connections` less `superuser_reserved_connections` (and `reserved_connections` on
   PostgreSQL 16+); `pg_stat_activity` by state, application, user, client and session age; queries running longer
   than `long_query_seconds`; transactions idle longer than `idle_in_transaction_seconds` (and idle sessions over
   `idle_seconds` where `end_idle`); lock chains from `pg_blocking_pids`. Query text is shortened, literals
   replaced by `?` and secrets masked. The pure judgement (`toilless.sops.postgres_connections`) picks the sessions
   that may be ended, oldest first, at most `max_terminations_per_run`.
3. `end_idle_sessions`: for each, right before acting: the run's markers (Variable
   `toilless_postgres_connections_ended`) must leave room under the cap (retries of the run included); the session is
   re-read and must be the same session (pid **and** backend_start) and still eligible; the **action gate**
   (`toilless.common.gate`: dry run, maintenance window, circuit breaker per server) must allow it; the marker is
   written; then `pg_terminate_backend` only if pid, backend_start, state and state_change are still what was read.
4. `report_connections`: usage, breakdowns, long and idle sessions, blocking chains, who was ended and why (or why
   not), and the pool advice per application (`pools` in the config).

## Who is told
- `infrastructure`: the report of every run (`report_channel`).
- Task failures: the shared Slack failure notifier (`default_args`).

## Safety
- Never ended: superusers, roles with REPLICATION, walsenders and every process that is not a client backend,
  Toilless's own sessions (`application_name` starting with `toilless`, and its own pid), any application not on
  `allowed_applications` (empty by default: nothing is ended until someone names an application).
- At most `max_terminations_per_run` per run, counted by markers written before each termination, so a retried or
  crashed run never ends more in total.
- `dry_run` and the maintenance window change nothing. A pid reused by the server for another session is never ended.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import dag

from toilless.common.dag_defaults import default_args, task
from toilless.common.params import alert_param, dry_run_param, optional_param
from toilless.sops.postgres_connections import steps


@dag(
    dag_id="postgres_connections",
    schedule="*/15 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # two runs must never end sessions on the same server at once
    tags=["sop", "postgres", "data-stores"],
    doc_md=__doc__,
    default_args=default_args(owner="sre-data", retries=2, retry_delay=timedelta(minutes=1)),
    params={
        "dry_run": dry_run_param(),
        "alert": alert_param(),
        "end_sessions": optional_param(
            "boolean",
            "End sessions",
            "Off: diagnose and advise only. Empty: configured. A run can switch ending off, never on.",
        ),
        "end_idle": optional_param(
            "boolean",
            "Also end idle sessions",
            "Off: only sessions idle in a transaction. On is accepted only where the configuration allows it.",
        ),
        "idle_in_transaction_seconds": optional_param(
            "number",
            "Idle-in-transaction age (s)",
            "End only transactions idle at least this long. Empty: configured (600); may only be raised.",
            exclusiveMinimum=0,
        ),
        "idle_seconds": optional_param(
            "number",
            "Idle age (s)",
            "With idle sessions ended: only those idle at least this long. Empty: configured; may only be raised.",
            exclusiveMinimum=0,
        ),
        "max_terminations": optional_param(
            "integer",
            "Most sessions to end",
            "At most this many per run, retries included. Empty: configured (5); may only be lowered.",
            minimum=1,
        ),
        "long_query_seconds": optional_param(
            "number",
            "Long query (s)",
            "List queries running longer than this. Empty: configured (300); may only be raised.",
            exclusiveMinimum=0,
        ),
    },
)
def postgres_connections() -> None:
    @task(multiple_outputs=False)
    def resolve_settings(params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Configuration + Variable + Params, validated; Params may only tighten the policy."""
        return steps.resolve_settings(dict(params or {}))

    @task(multiple_outputs=False)
    def inspect_connections(settings: dict[str, Any]) -> dict[str, Any]:
        """Usage, breakdowns, long and idle sessions, blocking chains; the sessions that may be ended."""
        return steps.inspect_connections(settings)

    @task(multiple_outputs=False)
    def end_idle_sessions(settings: dict[str, Any], diagnosis: dict[str, Any], **context: Any) -> dict[str, Any]:
        """End the planned sessions within the cap, each re-read and passed through the action gate."""
        return steps.end_idle_sessions(settings, diagnosis, run_id=str(context["run_id"]))

    @task(multiple_outputs=False)
    def report_connections(
        settings: dict[str, Any], diagnosis: dict[str, Any], outcome: dict[str, Any], **context: Any
    ) -> dict[str, Any]:
        """Post the findings, who was ended and why, and the pool advice."""
        return steps.report_connections(context, settings, diagnosis, outcome)

    settings = resolve_settings()
    diagnosis = inspect_connections(settings)
    outcome = end_idle_sessions(settings, diagnosis)
    report_connections(settings, diagnosis, outcome)


postgres_connections()
