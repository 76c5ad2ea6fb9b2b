"""The tasks of ``rds_storage_guard``: read settings, call the RDS hook, the gate and the pure modules, post the report.

The only module of the package that imports Airflow, always inside functions (the DAG file imports this at parse time).
Each function is one task body; ``dags/rds_storage_guard.py`` only wires them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from toilless.sops.rds_storage_guard import expansion, growth_plan, messages, report, scoping, storage_policy
from toilless.sops.rds_storage_guard.forecasting import (
    CRITICAL,
    DESCRIPTION_FIELDS,
    OK,
    WARNING,
    instance_from_description,
    worst_state,
)
from toilless.sops.rds_storage_guard.table_growth import DIALECTS, HISTORY_VARIABLE, table_growth

if TYPE_CHECKING:
    from toilless.hooks.rds import RdsHook

log = logging.getLogger(__name__)

CONFIG = "rds_storage_guard"


def _rds_hook(aws_conn_id: str | None, region_name: str | None) -> RdsHook:
    from toilless.hooks.rds import RdsHook

    return RdsHook(aws_conn_id=aws_conn_id, region_name=region_name)


def measure_storage(context: Mapping[str, Any]) -> dict[str, Any]:
    """Describe the instances in the run's scope and read their FreeStorageSpace history."""
    from airflow.sdk.exceptions import AirflowFailException

    from toilless.common.config import load_config
    from toilless.common.params import alert_from_params
    from toilless.hooks.rds import InstanceNotFoundError

    settings = load_config(CONFIG)
    params = context["params"]
    alert = alert_from_params(params)
    alert_ids: list[str] = []
    if alert is not None:
        # The alert's own labels first; the intake's route may also have mapped them to instance_ids.
        alert_ids = scoping.instance_ids_from_alert(alert, settings["alert_instance_labels"]) or list(
            params.get("instance_ids") or []
        )
        if not alert_ids:
            # Bad input: retrying cannot help.
            raise AirflowFailException(
                f"alert {alert.get('alertname')!r} carries no instance id in labels "
                f"{settings['alert_instance_labels']}: fix the alert rule or alert_instance_labels"
            )
    # Params may narrow the configured scope, never widen it (scoping.run_scope).
    scope = scoping.run_scope(settings, {"region": params.get("region")} if alert is not None else params, alert_ids)
    instance_ids = list(scope.instance_ids)
    tag_filter = scope.tag_filter
    hook = _rds_hook(settings["aws_conn_id"], scope.region)
    now = datetime.now(UTC)
    try:
        descriptions = hook.describe_instances(instance_ids)
    except InstanceNotFoundError as err:
        raise AirflowFailException(str(err)) from err
    if tag_filter:
        descriptions = [d for d in descriptions if scoping.matches_tags(d.get("TagList") or [], tag_filter)]
    scoping.check_in_scope(instance_ids, [d["DBInstanceIdentifier"] for d in descriptions], tag_filter)
    history = hook.free_storage_history(
        [d["DBInstanceIdentifier"] for d in descriptions],
        start=now - timedelta(days=float(settings["metric_history_days"])),
        end=now,
        period_seconds=int(settings["metric_period_seconds"]),
    )
    lookback = timedelta(hours=float(settings["policy"]["cooldown_hours"]) + 1)
    instances = []
    for description in descriptions:
        instance_id = description["DBInstanceIdentifier"]
        last_change = expansion.last_storage_change(hook, description, now=now, lookback=lookback)
        instances.append(
            {
                "description": {key: description.get(key) for key in DESCRIPTION_FIELDS},
                "last_storage_change_at": last_change.isoformat() if last_change else None,
                "free_storage": history.get(instance_id, []),
            }
        )
    log.info("Measured %s instance(s) in %s", len(instances), hook.region)
    return {
        "measured_at": now.isoformat(),
        "aws_conn_id": settings["aws_conn_id"],
        "region": hook.region,
        "instances": instances,
        "automatic_growth_in_scope": scope.automatic_growth,
        "scope_notes": list(scope.notes),
    }


def decide_action(measured: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Forecast and decide per instance (growth_plan.decide), and write the approval request if one is needed."""
    from airflow.sdk.exceptions import AirflowFailException

    from toilless.common.config import LooseningParamError, load_config
    from toilless.common.gate import GateConfigError, time_policy
    from toilless.common.policies import action_allowed

    settings = load_config(CONFIG)
    params = context["params"]
    try:
        # Params may tighten the configured policy, never loosen it (toilless.common.config).
        policy, param_notes = storage_policy.policy_from_params(settings["policy"], params)
        timing = time_policy(
            load_config("toilless"),
            None,
            business_hours=False,
            maintenance_window=bool(settings.get("respect_maintenance_window", True)),
        )
    except (storage_policy.StoragePolicyError, LooseningParamError, GateConfigError) as err:
        # Bad Params or settings: retrying cannot help.
        raise AirflowFailException(str(err)) from err
    if policy.auto_grow and not measured.get("automatic_growth_in_scope", True):
        # Instances a Param chose outside what the configuration selects: growth only with approval.
        policy = replace(policy, auto_grow=False)
        param_notes = [*param_notes, *measured.get("scope_notes", [])]
    now = datetime.now(UTC)
    # Decision time: an automatic growth inside the maintenance window becomes an approval request. The growth
    # step checks the whole gate again at the moment it acts.
    timing_verdict = action_allowed(now, business_hours=None, maintenance_window=timing.maintenance_window)
    auto_allowed, auto_reason = timing_verdict.allowed, "" if timing_verdict.allowed else timing_verdict.reason
    decisions = []
    for measured_instance in measured["instances"]:
        last_change = measured_instance["last_storage_change_at"]
        instance = instance_from_description(
            measured_instance["description"],
            [tuple(point) for point in measured_instance["free_storage"]],
            datetime.fromisoformat(last_change) if last_change else None,
        )
        decision = growth_plan.decide(
            instance, policy, now=now, auto_allowed_now=auto_allowed, auto_block_reason=auto_reason
        ).as_dict()
        log.info("%s", messages.instance_line(decision))
        decisions.append(decision)
    timeout = float(params.get("approval_timeout_minutes") or settings["approval"]["timeout_minutes"])
    to_approve = [d for d in decisions if d["action"] == growth_plan.REQUEST_APPROVAL]
    subject, body = messages.approval_text(to_approve, timeout) if to_approve else ("", "")
    return {
        "decided_at": now.isoformat(),
        "dry_run": bool(params.get("dry_run")),
        "policy": {
            "warning_used_pct": policy.warning_used_pct,
            "critical_used_pct": policy.critical_used_pct,
            "auto_grow": policy.auto_grow,
            "cap_gib": policy.cap_gib,
            "param_notes": param_notes,
        },
        "decisions": decisions,
        "to_approve": [d["instance_id"] for d in to_approve],
        "to_grow_now": [d["instance_id"] for d in decisions if d["action"] == growth_plan.GROW_NOW],
        "approval_subject": subject,
        "approval_body": body,
        "approval_timeout_minutes": timeout,
    }


def choose_path(plan: Mapping[str, Any]) -> str:
    """Approval, automatic growth, or straight to the report (nothing to grow, or a dry run)."""
    if plan["dry_run"]:
        log.info("Dry run: nothing is changed, the report says what would be done")
        return "report_storage"
    if plan["to_approve"]:
        return "request_approval"
    if plan["to_grow_now"]:
        return "expand_allocated_storage"
    return "report_storage"


def expand_allocated_storage(
    plan: Mapping[str, Any], measured: Mapping[str, Any], context: Mapping[str, Any]
) -> dict[str, Any]:
    """Grow each approved or automatic instance to its target, exactly once (expansion.grow_storage_once)."""
    from toilless.common.config import load_config
    from toilless.common.errors import InvalidInput, is_permanent

    settings = load_config(CONFIG)
    toilless_settings = load_config("toilless")
    approval = context["ti"].xcom_pull(task_ids="request_approval")
    approved = bool(approval) and approval.get("chosen_options") == ["Approve"]
    chosen = set(plan["to_grow_now"]) | (set(plan["to_approve"]) if approved else set())
    hook = _rds_hook(measured["aws_conn_id"], measured["region"])
    statuses = tuple(settings["policy"]["modifiable_statuses"])
    # Dry run is read again here, not only from the plan: the gate is checked at the moment of acting.
    dry_run = bool(plan["dry_run"]) or bool(context["params"].get("dry_run"))
    results, errors, invalid = [], [], []
    for decision in plan["decisions"]:
        if decision["instance_id"] not in chosen:
            continue
        if decision["action"] not in (growth_plan.GROW_NOW, growth_plan.REQUEST_APPROVAL):
            continue
        gate_policy = storage_policy.growth_gate_policy(
            settings,
            toilless_settings,
            dry_run=dry_run,
            automatic=decision["action"] == growth_plan.GROW_NOW,
        )
        try:
            results.append(
                expansion.grow_storage_once(
                    hook,
                    decision["instance_id"],
                    from_gib=int(decision["allocated_gib"]),
                    target_gib=int(decision["target_gib"]),
                    new_max_allocated_gib=decision.get("new_max_allocated_gib"),
                    run_id=context["run_id"],
                    gate_policy=gate_policy,
                    modifiable_statuses=statuses,
                )
            )
        except Exception as err:  # one instance's failure must not stop the others; raised below
            errors.append(f"{decision['instance_id']}: {err}")
            if isinstance(err, InvalidInput) or is_permanent(err):
                invalid.append(err)
    if errors and len(invalid) == len(errors):
        # Every failure is a refused contract or policy check or a permanent AWS error (e.g. StorageQuotaExceeded):
        # a retry would fail the same way (never retried).
        raise InvalidInput("storage growth refused for " + "; ".join(errors))
    if errors:
        # The retry re-runs every instance: those already grown are found at their target and left alone.
        raise RuntimeError("storage growth failed for " + "; ".join(errors))
    return {"expansions": results, "aws_conn_id": measured["aws_conn_id"], "region": measured["region"]}


# -- where the space goes ----------------------------------------------------------------------------------------


def inspect_table_growth(plan: Mapping[str, Any]) -> dict[str, Any]:
    """Largest tables and their growth for instances at warning or worse that have a database Connection."""
    from toilless.common.config import load_config

    settings = load_config(CONFIG)["data_hint"]
    wanted = [d["instance_id"] for d in plan["decisions"] if d["state"] in (WARNING, CRITICAL)]
    return inspect_instances(wanted, settings["conn_id_template"], int(settings["top_tables"]))


def largest_tables(conn_id: str, limit: int) -> dict[str, int]:
    """``{table: total bytes}`` for the ``limit`` largest tables behind a database Connection."""
    from airflow.sdk import BaseHook

    from toilless.common.config import include_path

    connection = BaseHook.get_connection(conn_id)
    dialect = DIALECTS.get(connection.conn_type or "")
    if dialect is None:
        raise ValueError(
            f"Connection {conn_id} has type {connection.conn_type!r}; supported: {', '.join(sorted(DIALECTS))}"
        )
    sql = include_path("sql", CONFIG, f"largest_tables.{dialect}.sql").read_text(encoding="utf-8")
    hook = connection.get_hook()
    records = hook.get_records(sql, parameters=(int(limit),))
    return {str(name): int(size or 0) for name, size in records}


def inspect_instances(instance_ids: Iterable[str], conn_id_template: str, limit: int) -> dict[str, Any]:
    """Per instance: the largest tables and their growth, or why they are not known (no Connection, an error).

    A database that cannot be read does not fail the run: the storage report matters more than this hint, and it
    says what went wrong.
    """
    from airflow.exceptions import AirflowNotFoundException
    from airflow.sdk import BaseHook

    from toilless.common.alerting import first_line
    from toilless.common.state import read_state, write_state

    # Unreadable history: start it again (a growth hint, not the job).
    history = read_state(HISTORY_VARIABLE) or {}
    now = time.time()
    found: dict[str, Any] = {}
    changed = False
    for instance_id in instance_ids:
        conn_id = conn_id_template.format(instance_id=instance_id)
        try:
            BaseHook.get_connection(conn_id)
        except AirflowNotFoundException:
            found[instance_id] = {"conn_id": conn_id, "configured": False}
            continue
        try:
            sizes = largest_tables(conn_id, limit)
        except Exception as err:  # a hint, not the job: report the error instead of failing the storage report
            log.warning("Could not read table sizes of %s through %s: %s", instance_id, conn_id, first_line(err))
            found[instance_id] = {"conn_id": conn_id, "configured": True, "error": first_line(err)}
            continue
        found[instance_id] = {
            "conn_id": conn_id,
            "configured": True,
            "tables": table_growth(history.get(instance_id), sizes, now),
        }
        history[instance_id] = {"taken_at": now, "tables": sizes}
        changed = True
    if changed:
        write_state(HISTORY_VARIABLE, history)
    return found


# -- the report ----------------------------------------------------------------------------------------------------


def report_storage(
    context: Mapping[str, Any], *, plan: Mapping[str, Any], measured: Mapping[str, Any], tables: Mapping[str, Any]
) -> dict[str, Any]:
    """Charts, then the Slack report (unless a scheduled run found everything ok). Returns what was sent."""
    from toilless.common.config import load_config
    from toilless.common.reporting import send_report, upload_file
    from toilless.common.state import read_state, write_state
    from toilless.sops.rds_storage_guard.chart import chart_dir, render_storage_chart

    report_settings = load_config(CONFIG)["report"]
    ti = context["ti"]
    approval = ti.xcom_pull(task_ids="request_approval")
    expansions = ti.xcom_pull(task_ids="expand_allocated_storage", key="expansions")
    verification = ti.xcom_pull(task_ids="verify_expansion")
    lines = report.report_lines(
        plan, approval=approval, expansions=expansions, verification=verification, tables=tables
    )
    decisions = plan["decisions"]
    worst = worst_state(d["state"] for d in decisions)
    acted = any(d["action"] != growth_plan.NONE for d in decisions)
    run_type = str(getattr(context.get("dag_run"), "run_type", ""))
    scheduled = run_type.endswith("scheduled")
    if scheduled and worst == OK and not acted and not report_settings.get("post_when_all_ok"):
        log.info("Scheduled run, every instance ok: no report posted")
        return {"posted": False, "lines": lines, "charts": [], "state": worst}
    fingerprint = report.report_fingerprint(decisions)
    now = time.time()
    if scheduled and not expansions and not approval:
        # A warning that stays a warning is told again after repeat_hours, not every 30 minutes.
        repeat_hours = float(report_settings.get("repeat_unchanged_hours", 24))
        repeat, why = report.should_repeat(
            read_state(report.LAST_REPORT_VARIABLE) or None, fingerprint, now, repeat_hours
        )
        if not repeat:
            log.info("No report posted: %s", why)
            return {"posted": False, "lines": lines, "charts": [], "state": worst, "why": why}

    channel = report_settings["channel"]
    history = {m["description"]["DBInstanceIdentifier"]: m["free_storage"] for m in measured["instances"]}
    charts_in = chart_dir(report_settings["chart_dir"], str(context.get("run_id", "run")))
    charts = []
    for decision in decisions:
        if decision["state"] not in (WARNING, CRITICAL):
            continue
        path = render_storage_chart(
            decision,
            history.get(decision["instance_id"], []),
            charts_in / f"{decision['instance_id']}.png",
            forecast_days=float(report_settings.get("forecast_days", 30)),
            warning_pct=plan["policy"]["warning_used_pct"],
            critical_pct=plan["policy"]["critical_used_pct"],
        )
        uploaded = upload_file(channel, path, title=f"{decision['instance_id']} storage forecast")
        charts.append({"instance_id": decision["instance_id"], "path": str(path), "uploaded": uploaded})
        if not uploaded:
            lines.append(f"chart for {decision['instance_id']}: {path} (no Slack API Connection to upload it)")
    count = len(decisions)
    title = f"RDS storage guard: {worst.upper()} ({count} instance{'s' if count != 1 else ''})"
    if plan.get("dry_run"):
        title += " [dry run]"
    status = {OK: "ok", WARNING: "warning", CRITICAL: "critical"}.get(worst, "info")
    send_report(context, channel=channel, title=title, lines=lines, status=status)
    write_state(report.LAST_REPORT_VARIABLE, {"fingerprint": fingerprint, "posted_at": now})
    return {"posted": True, "lines": lines, "charts": charts, "state": worst, "channel": channel}
