"""
# Redis memory pressure (`redis_memory`)

SOP: SOPS.md, "Data stores", Redis memory pressure (OOM errors, high eviction rate): check memory use and key
expiry, clean up unused keys, scale, optimise data structures. This DAG measures how close a Redis is to its
limit and why, advises, and cleans up keys without TTL that nobody used for long, under configured prefixes only,
within policy. Details: docs/redis_memory.md.

## When it runs
- **Schedule**: every 4 hours (at :15).
- **Alert**: `RedisMemoryHigh`, `RedisOutOfMemory` or `RedisHighEvictionRate` through the alert intake (Param `alert`).
- **Manual**: with the Params below. Params may only **tighten** the configured policy (a higher `idle_seconds`, a
  lower `max_keys_per_run`, fewer `prefixes`, `allow_cleanup` off); a Param that would loosen it fails the run at once.

## Steps
1. `resolve_settings`: `include/config/redis_memory.yaml` + Variable `toilless_redis_memory` + the run's Params; the
   Connection `redis_conn_id` must exist and be of type `redis`. Bad input (a prefix `*` or empty, a threshold of 0)
   fails here, before Redis is touched.
2. `diagnose_memory`: `INFO memory|stats|keyspace|errorstats`: used vs maxmemory, maxmemory-policy, fragmentation,
   OOM errors, the eviction rate from two samples; then a bounded key sample (SCAN with COUNT + MEMORY USAGE + PTTL
   + OBJECT IDLETIME, capped by key count and by time): the biggest keys, keys without TTL grouped by prefix.
3. `clean_idle_keys`: only under memory pressure (or always, by configuration), only for configured prefixes: keys
   without TTL idle longer than the threshold get a TTL (`expire`) or are unlinked (`unlink`), in batches. Each batch
   passes the **action gate** (dry run, maintenance window, cool-down, circuit breaker) and the budget of
   `max_keys_per_run` (all tries of the run together, reserved before acting); one Lua script re-checks each key
   (still no TTL, still idle, still under the prefix) and acts atomically: a key used meanwhile is left alone.
4. `report_outcome`: level, findings, advice (scale, TTLs, big keys, fragmentation), the sample, what was cleaned
   up (memory before/after), to `non_urgent`.

## Who is told
- `non_urgent`: the report of every run (`report_channel`).
- Task failures: the shared Slack failure notifier (`default_args`).

## Safety
- Dry run by default (`dry_run: true` in the YAML); a run can ask for a dry run, never switch it off.
- Keys outside the configured prefixes are never touched (checked twice: SCAN MATCH and inside the script).
- At most `max_keys_per_run` keys per run, retries included; nothing inside the maintenance window.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import dag

from toilless.common.dag_defaults import default_args, task
from toilless.common.params import alert_param, dry_run_param, optional_param
from toilless.sops.redis_memory import steps


@dag(
    dag_id="redis_memory",
    schedule="15 */4 * * *",
    catchup=False,
    max_active_runs=1,  # two runs must never share one Redis's cleanup budget at once
    tags=["sop", "redis", "data-stores", "alert-triggered"],
    doc_md=__doc__,
    default_args=default_args(owner="sre-datastores", retries=2, retry_delay=timedelta(minutes=1)),
    params={
        "dry_run": dry_run_param(),
        "alert": alert_param(),
        "allow_cleanup": optional_param(
            "boolean",
            "Allow the cleanup",
            "Off: diagnose and report only. Empty: configured (cleanup.allow). A run can switch it off, never on.",
        ),
        "idle_seconds": optional_param(
            "integer",
            "Idle time before cleanup (seconds)",
            "A key without TTL must have been idle this long. May only be raised above the configured value.",
            minimum=1,
        ),
        "max_keys_per_run": optional_param(
            "integer",
            "Keys cleaned up at most",
            "Keys given a TTL or unlinked in this run, retries included. May only be lowered.",
            minimum=1,
        ),
        "prefixes": optional_param(
            "array",
            "Key prefixes",
            "Clean up only these of the configured prefixes (literal text, e.g. session:). Empty: all configured.",
            items={"type": "string", "minLength": 1, "maxLength": 200},
            maxItems=50,
        ),
    },
)
def redis_memory():
    @task
    def resolve_settings(params: dict[str, Any] | None = None) -> dict[str, Any]:
        return steps.resolve_settings(dict(params or {}))

    @task
    def diagnose_memory(settings: dict[str, Any]) -> dict[str, Any]:
        return steps.diagnose_memory(settings)

    @task
    def clean_idle_keys(settings: dict[str, Any], diagnosis: dict[str, Any], **context: Any) -> dict[str, Any]:
        return steps.clean_idle_keys(settings, diagnosis, context)

    @task
    def report_outcome(
        settings: dict[str, Any], diagnosis: dict[str, Any], outcome: dict[str, Any], **context: Any
    ) -> dict[str, Any]:
        return steps.report_outcome(context, settings, diagnosis, outcome)

    settings = resolve_settings()
    diagnosis = diagnose_memory(settings)
    outcome = clean_idle_keys(settings, diagnosis)
    report_outcome(settings, diagnosis, outcome)


redis_memory()
