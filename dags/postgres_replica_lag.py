"""
# PostgreSQL replica lag (`postgres_replica_lag`)

SOP *Data stores*, replica lag > 10 s, warning at 5 s (SOPS.md): check the replica's status, network and disk;
restart replication or fail over if needed. This DAG measures each replica's lag against its primary, tells why it
lags, and recommends with the evidence. It **never fails over** or restarts replication by itself: the only actions
are resuming a paused replay and cancelling the replica query that holds replay, both through the action gate.

## When it runs
- **Schedule**: every 5 minutes; a scheduled run with every replica within its thresholds and nothing done is quiet.
- **Alert**: `PostgresReplicaLagHigh` / `PostgresReplicaLagCritical` through the alert intake (Param `alert`).
- **Manual**: with the Params below; they may only **tighten** the configured policy.

## Steps
1. `resolve_settings`: `include/config/postgres_replica_lag.yaml` + Variable `toilless_postgres_replica_lag` +
   Params, validated; every Connection must be of type `postgres`. Bad input fails here, nothing read or changed.
2. `inspect_replication` (queries in `include/sql/postgres_replica_lag/`): on the primary `pg_stat_replication`
   (state, sync state, sent / write / flush / replay LSN, write / flush / replay lag, byte gaps); on each replica
   `pg_last_wal_receive_lsn`, `pg_last_wal_replay_lsn`, `pg_last_xact_replay_timestamp`, `pg_is_wal_replay_paused`,
   `pg_stat_wal_receiver`, what the startup (replay) process waits for and which queries hold it (`pg_locks` for lock
   conflicts, snapshot holders for snapshot / buffer-pin conflicts), and free disk of the data directory where a way
   is configured (`disk`). The pure judgement (`toilless.sops.postgres_replica_lag.diagnosis`): lag in seconds and
   bytes, ok / warning / critical, causes (replay paused, replay held by a query, network / receive side, replay slow,
   disk), recommendations (failover only recommended, with how much would be lost), and the allowed actions.
3. `act_on_replay`: right before each action the replica is re-read (replay still paused; the query still holds
   replay: same pid, backend_start and query_start); the **action gate** (dry run, maintenance window, circuit breaker
   per replica) must allow it; a marker (Variable `toilless_postgres_replica_lag_actions`) is written first, so at most
   `max_cancels_per_run` queries are cancelled per run, retries included. Then `pg_wal_replay_resume()` or
   `pg_cancel_backend(pid)` (only if that pid still runs the same query of the same session).
4. `report_replica_lag`: per replica lag, causes, evidence, recommendations, and what was done or why not.

## Who is told
- `infrastructure`: the report (`report_channel`). Task failures: the shared Slack failure notifier.

## Safety
- No failover, no restart of replication, no change on the primary: only resume and cancel on a replica.
- `dry_run` and the maintenance window change nothing; a retried run never cancels more than the cap in total;
  Toilless's own sessions are never cancelled.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import dag

from toilless.common.dag_defaults import default_args, task
from toilless.common.params import alert_param, dry_run_param, optional_param
from toilless.sops.postgres_replica_lag import steps


@dag(
    dag_id="postgres_replica_lag",
    schedule="*/5 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # two runs must never act on the same replica at once
    tags=["sop", "postgres", "data-stores"],
    doc_md=__doc__,
    default_args=default_args(owner="sre-data", retries=2, retry_delay=timedelta(minutes=1)),
    params={
        "dry_run": dry_run_param(),
        "alert": alert_param(),
        "resume_paused_replay": optional_param(
            "boolean", "Resume a paused replay", "Off: recommend only. Empty: configured. Never switches it on."
        ),
        "cancel_blocking_queries": optional_param(
            "boolean",
            "Cancel the query holding replay",
            "Off: recommend only. Empty: configured. Never switches it on.",
        ),
        "action_min_lag_seconds": optional_param(
            "number",
            "Act from lag (s)",
            "Act only at this lag or more. Empty: configured (10); may only be raised.",
            exclusiveMinimum=0,
        ),
        "max_cancels": optional_param(
            "integer",
            "Most queries to cancel",
            "At most this many per run, retries included. Empty: configured (3); may only be lowered.",
            minimum=1,
        ),
        "warning_seconds": optional_param(
            "number", "Warning lag (s)", "Empty: configured (5); may only be raised.", exclusiveMinimum=0
        ),
        "critical_seconds": optional_param(
            "number", "Critical lag (s)", "Empty: configured (10); may only be raised.", exclusiveMinimum=0
        ),
    },
)
def postgres_replica_lag() -> None:
    @task(multiple_outputs=False)
    def resolve_settings(params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Configuration + Variable + Params, validated; every Connection must be PostgreSQL."""
        return steps.resolve_settings(dict(params or {}))

    @task(multiple_outputs=False)
    def inspect_replication(settings: dict[str, Any]) -> dict[str, Any]:
        """Read the primary and each replica; lag, causes, recommendations, allowed actions."""
        return steps.inspect_replication(settings)

    @task(multiple_outputs=False)
    def act_on_replay(settings: dict[str, Any], diagnosis: dict[str, Any], **context: Any) -> dict[str, Any]:
        """Resume a paused replay / cancel the query holding replay, each re-checked and gated."""
        return steps.act_on_replay(settings, diagnosis, run_id=str(context["run_id"]))

    @task(multiple_outputs=False)
    def report_replica_lag(
        settings: dict[str, Any], diagnosis: dict[str, Any], outcome: dict[str, Any], **context: Any
    ) -> dict[str, Any]:
        """Post lag, causes, evidence, recommendations and what was done."""
        return steps.report_replica_lag(context, settings, diagnosis, outcome)

    settings = resolve_settings()
    diagnosis = inspect_replication(settings)
    outcome = act_on_replay(settings, diagnosis)
    report_replica_lag(settings, diagnosis, outcome)


postgres_replica_lag()
