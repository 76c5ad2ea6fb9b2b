"""
# Order-processor backlog (`order_backlog_check`)

SOP: SOPS.md, "Order-processor backlog". The order processor runs hourly and batch-processes open orders
(2 processes, 4 orders at a time, 10-15 s an order). This DAG tells an **overloaded** processor from a
**stuck** or **crashed/silent** one, tells the right people with the evidence, restarts it only when allowed,
and confirms that the backlog then drains.

## What fires it
- **Schedule**: hourly at minute 20, after the processor's own run at the top of the hour.
- **Alert**: the outstanding-orders alert (`OrderBacklogTooHigh`), through the alert intake (Param `alert`).
- **Manual**: with Params for thresholds, business hours, the log path, `dry_run`, `allow_restart`. Params may only
  **tighten** the restart policy (a higher `stuck_error_repeats`, narrower business hours, `allow_restart` off); a
  Param that would loosen it fails the run at once: loosening is a configuration change (YAML or Variable).
  A `log_path` Param chooses the evidence: a run that reads a log other than the configured one diagnoses and
  reports, but never restarts.

## Steps
1. `resolve_settings`: `include/config/order_backlog_check.yaml` + Variable `toilless_order_backlog_check` +
   the run's Params. Every Param is validated first (integers only for thresholds, a log path only inside
   `log.allowed_roots`); bad input fails here with a clear error and nothing read or changed.
2. `measure_backlog`: outstanding orders, the oldest one's age and the overdue count from the orders database
   (Connection `orders_db`, query `include/sql/order_backlog_check/order_backlog.sql`, parameters bound by the
   driver). Needs the partial index `orders_outstanding_created_at_idx`
   (`include/sql/order_backlog_check/orders_schema.sql`) to stay cheap.
3. `read_processor_log`: the processor's log from its latest `Startup...` (the log file and its rotated
   `.1`/`.gz`/`.zst` siblings, or the pod's log through the Kubernetes Connection). Every file read passes the
   same check (a regular file physically under `log.allowed_roots`: a sibling symlinked out of the roots is
   skipped and named); files are read as bounded streams (only the last `log.max_bytes` of text are held, a
   `.gz`/`.zst` inflating beyond `log.max_decompressed_bytes` is skipped). The summary handed on is bounded
   (20 order/error pairs, 500 characters a line, secrets masked) and says what was cut.
4. `classify_backlog`: capacity per run from the configured figures and the pace observed in the log; verdict
   **stuck** (the same `Error #N` repeated on one order), **crashed_silent** (no progress for longer than the
   run interval plus grace), **overloaded** (making progress but the backlog exceeds a run's capacity, or the
   oldest order is too old), **errors** (errors while progressing) or **healthy**.
5. `notify_ops` (overloaded): numbers and the suggested run frequency to `ops`.
6. `notify_developers` (stuck, errors, crashed_silent): order id, error number and a log excerpt to
   `developers`.
7. `restart_processor` (stuck, crashed_silent): Kubernetes rollout restart of the Deployment (or the
   configured command), only when the **action gate** (`toilless.common.gate`) allows it at that moment: not a dry
   run, inside business hours (configured, and the run's narrower ones), outside the maintenance window, past the
   cool-down since the last restart, and the circuit breaker closed (`gate` in the YAML); otherwise it says why and
   when it will be allowed. Never twice for the same incident: the incident key (and the recent restarts) are
   written atomically with the restart (pod template annotations, or a Variable for the command method) and re-read
   right before acting.
8. `verify_recovery`: deferred to the triggerer (no worker slot held) until the log shows a new run with
   progress and the backlog falls, or the timeout passes.
9. `report_outcome`: the record of what was found and done to `non_urgent`; escalates to `urgent` when the
   restart did not bring the processor back, or a restart for the same incident already failed to.

`dry_run` reports what would be done and restarts nothing. Invalid settings or Params fail the run at once,
without retries.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import dag

from toilless.common.dag_defaults import default_args, task
from toilless.common.params import alert_param, dry_run_param, optional_param
from toilless.sensors.order_processor import OrderProcessorRecoverySensor
from toilless.sops.order_backlog_check import steps

_HH_MM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


@dag(
    dag_id="order_backlog_check",
    schedule="20 * * * *",
    catchup=False,
    max_active_runs=1,  # two runs must never decide about the same incident at once
    tags=["sop", "orders", "alert-triggered"],
    doc_md=__doc__,
    default_args=default_args(owner="sre-orders", retries=2, retry_delay=timedelta(minutes=1)),
    params={
        "dry_run": dry_run_param(),
        "alert": alert_param(),
        "allow_restart": optional_param(
            "boolean",
            "Allow a restart",
            "Restart a stuck or silent processor when policy allows. Off: diagnose and notify only "
            "(a run can switch restarts off, never on). Empty: the configured value (restart.allow).",
        ),
        "outstanding_threshold": optional_param(
            "integer",
            "Outstanding orders threshold",
            "Outstanding orders considered too many. Empty: the configured value (1000).",
            minimum=0,
        ),
        "oldest_order_age_minutes": optional_param(
            "integer",
            "Oldest order age limit (minutes)",
            "The oldest outstanding order may wait at most this long. Empty: configured (120).",
            minimum=1,
        ),
        "stuck_error_repeats": optional_param(
            "integer",
            "Repeats that mean stuck",
            "The same error on the same order this many times with no progress means stuck (and may be "
            "restarted): may only be raised above the configured value (3).",
            minimum=2,
        ),
        "log_path": optional_param(
            "string",
            "Processor log file",
            "Read this log instead of the configured one. Must lie under a configured log root. A run whose "
            "evidence comes from a log chosen here diagnoses and reports only: it never restarts (unless this "
            "is the configured log file).",
            pattern=r"^/[A-Za-z0-9._/-]+$",
            maxLength=1024,
        ),
        "business_hours_days": optional_param(
            "array",
            "Business days",
            "Days a restart is allowed: only days inside the configured business hours (a run may narrow them, "
            "never widen them). Empty: configured.",
            items={"type": "string", "enum": _WEEKDAYS},
        ),
        "business_hours_start": optional_param(
            "string",
            "Business hours start (HH:MM)",
            "Local start of business hours, no earlier than the configured start. Empty: configured.",
            pattern=_HH_MM,
        ),
        "business_hours_end": optional_param(
            "string",
            "Business hours end (HH:MM)",
            "Local end of business hours, no later than the configured end. Empty: configured.",
            pattern=_HH_MM,
        ),
        "business_hours_timezone": optional_param(
            "string",
            "Business hours timezone",
            "IANA timezone of the run's business hours, e.g. Europe/Berlin; the hours must still lie inside the "
            "configured ones. Empty: configured.",
            pattern=r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$",
        ),
    },
)
def order_backlog_check():
    @task
    def resolve_settings(params: dict[str, Any] | None = None) -> dict[str, Any]:
        return steps.resolve_settings(params)

    @task
    def measure_backlog(settings: dict[str, Any]) -> dict[str, Any]:
        return steps.measure_backlog(settings)

    @task
    def read_processor_log(settings: dict[str, Any]) -> dict[str, Any]:
        return steps.read_processor_log(settings)

    @task
    def classify_backlog(settings: dict[str, Any], backlog: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
        return steps.classify_backlog(settings, backlog, run)

    @task
    def notify_ops(settings: dict[str, Any], diagnosis: dict[str, Any], backlog: dict[str, Any]) -> dict[str, Any]:
        return steps.notify_ops(settings, diagnosis, backlog)

    @task
    def notify_developers(
        settings: dict[str, Any], diagnosis: dict[str, Any], backlog: dict[str, Any], run: dict[str, Any]
    ) -> dict[str, Any]:
        return steps.notify_developers(settings, diagnosis, backlog, run)

    @task
    def restart_processor(settings: dict[str, Any], diagnosis: dict[str, Any], **context: Any) -> dict[str, Any]:
        return steps.restart_processor(settings, diagnosis, context)

    @task(trigger_rule="none_failed")
    def report_outcome(
        settings: dict[str, Any],
        diagnosis: dict[str, Any],
        backlog: dict[str, Any],
        restart: dict[str, Any],
        verification: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        **context: Any,
    ) -> dict[str, Any]:
        return steps.report_outcome(context, settings, diagnosis, backlog, restart, verification, params)

    settings = resolve_settings()
    backlog = measure_backlog(settings)
    run = read_processor_log(settings)
    diagnosis = classify_backlog(settings, backlog, run)
    ops = notify_ops(settings, diagnosis, backlog)
    developers = notify_developers(settings, diagnosis, backlog, run)
    restart = restart_processor(settings, diagnosis)
    verification = OrderProcessorRecoverySensor(
        task_id="verify_recovery", settings=settings, restart=restart, backlog=backlog
    )
    restart >> verification
    outcome = report_outcome(settings, diagnosis, backlog, restart, verification.output)
    [ops, developers] >> outcome


order_backlog_check()
