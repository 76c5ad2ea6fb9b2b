"""The RDS storage guard's report: per instance state, forecast, action and outcome; charts for warning and worse.

:func:`report_lines` is pure; :func:`build_and_send_report` runs inside the ``report_storage`` task.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from toilless import rds_storage as rs
from toilless.common import slack

log = logging.getLogger(__name__)

#: What the last posted report said, so an unchanged situation is not re-posted every 30 minutes.
LAST_REPORT_VARIABLE = "rds_storage_guard_last_report"


def approval_outcome(approval: Mapping[str, Any] | None, timeout_minutes: float) -> tuple[str, str]:
    """(``approved`` | ``rejected`` | ``timed_out`` | ``not_asked``, text) from the approval task's XCom."""
    if not approval:
        return "not_asked", "approval was not answered (the request did not complete)"
    chosen = approval.get("chosen_options") or []
    user = approval.get("responded_by_user")
    who = (user.get("name") or user.get("id")) if isinstance(user, Mapping) else user
    if "Approve" in chosen:
        return "approved", f"approved by {who or 'unknown'}"
    if not who:
        return "timed_out", f"no answer within {timeout_minutes:g} minutes: not grown, nothing changed"
    return "rejected", f"rejected by {who}: not grown, nothing changed"


def report_lines(
    plan: Mapping[str, Any],
    *,
    approval: Mapping[str, Any] | None,
    expansions: Sequence[Mapping[str, Any]] | None,
    verification: Sequence[Mapping[str, Any]] | None,
    tables: Mapping[str, Any] | None,
) -> list[str]:
    """Pure: the report's bullet lines for ``toilless.common.reporting.render_report``: plain strings (escaped there) where
    they quote outside text (reasons, table names, errors, who answered), :class:`~toilless.common.slack.Mrkdwn`
    where Toilless writes every character itself."""
    lines: list[str] = []
    expanded = {e["instance_id"]: e for e in expansions or []}
    verified = {v["instance_id"]: v for v in verification or []}
    outcome, outcome_text = approval_outcome(approval, plan.get("approval_timeout_minutes", 0))
    for decision in plan["decisions"]:
        instance_id = decision["instance_id"]
        lines.append(rs.instance_line(decision))
        action = decision["action"]
        if action in (rs.GROW_NOW, rs.REQUEST_APPROVAL):
            if plan.get("dry_run"):
                lines.append(f"    dry run: would grow to {decision['target_gib']} GiB; nothing changed")
            else:
                if action == rs.REQUEST_APPROVAL:
                    lines.append(f"    {outcome_text}")
                if instance_id in expanded:
                    lines.append(_expansion_text(expanded[instance_id], verified.get(instance_id)))
                elif action == rs.GROW_NOW or outcome == "approved":
                    lines.append("    not grown: the growth step did not complete (see the failure alert)")
        if action in (rs.GROW_NOW, rs.REQUEST_APPROVAL) and decision.get("monthly_cost_delta"):
            lines.append(
                f"    cost: +{decision['monthly_cost_delta']:.2f} {decision['currency']}/month, permanent "
                "(RDS cannot shrink storage)"
            )
        hint = (tables or {}).get(instance_id)
        if hint:
            lines.append("    " + _tables_text(hint))
    notes = (plan.get("policy") or {}).get("param_notes") or []
    if notes:
        lines.append("Policy tightened for this run: " + "; ".join(notes))
    return lines


def _expansion_text(expansion: Mapping[str, Any], status: Mapping[str, Any] | None) -> slack.Mrkdwn:
    if expansion.get("outcome") in ("gate_refused", "dry_run"):
        verdict = expansion.get("gate") or {}
        text = slack.mrkdwn(
            "not grown at the moment of acting: {}", verdict.get("reason", "refused by the action gate"), limit=300
        )
        if verdict.get("allowed_from"):
            text = slack.mrkdwn("{} (allowed from {})", text, verdict["allowed_from"], limit=400)
        return text
    if expansion.get("outcome") == "already_done":
        text = slack.mrkdwn("    already at or growing to {} GiB: not modified again", expansion["target_gib"])
    else:
        text = slack.mrkdwn("    grown {} -> {} GiB (ApplyImmediately)", expansion["from_gib"], expansion["target_gib"])
    if status:
        text = slack.mrkdwn(
            "{}; verified: status {}, allocated {} GiB", text, status["status"], status["allocated_gib"], limit=100
        )
    return text


def _tables_text(hint: Mapping[str, Any]) -> str:
    if not hint.get("configured"):
        return f"largest tables: unknown (no database Connection {hint['conn_id']})"
    if hint.get("error"):
        return f"largest tables: could not read them through {hint['conn_id']}: {hint['error']}"
    parts = []
    for row in hint.get("tables") or []:
        growth = row.get("growth_bytes_per_day")
        trend = f", {_size(growth, signed=True)}/day" if growth is not None else ""
        parts.append(f"{row['table']} {_size(row['bytes'])}{trend}")
    return "largest tables: " + ("; ".join(parts) if parts else "none")


def report_fingerprint(decisions: Sequence[Mapping[str, Any]]) -> str:
    """Pure: what a report says in short (instance, state, action, why blocked); equal = nothing new to tell."""
    parts = sorted(f"{d['instance_id']}:{d['state']}:{d['action']}:{d.get('blocked_reason') or ''}" for d in decisions)
    return "|".join(parts)


def should_repeat(
    previous: Mapping[str, Any] | None, fingerprint: str, now: float, repeat_hours: float
) -> tuple[bool, str]:
    """Pure: post a scheduled report again? Yes if it says something new or the last one is old enough."""
    if not previous or previous.get("fingerprint") != fingerprint:
        return True, "the situation changed"
    age_hours = (now - float(previous.get("posted_at") or 0)) / 3600.0
    if age_hours >= repeat_hours:
        return True, f"the same report was last posted {age_hours:.1f} h ago"
    return False, f"the same report was posted {age_hours:.1f} h ago (repeat after {repeat_hours:g} h)"


def _size(size_bytes: float, *, signed: bool = False) -> str:
    """GiB for big numbers, MiB below one GiB (a table of 0.01 GiB says little)."""
    sign = "+" if signed else ""
    if abs(size_bytes) >= rs.GIB:
        return f"{size_bytes / rs.GIB:{sign}.2f} GiB"
    return f"{size_bytes / 1024**2:{sign}.1f} MiB"


def build_and_send_report(
    context: Mapping[str, Any], *, plan: Mapping[str, Any], measured: Mapping[str, Any], tables: Mapping[str, Any]
) -> dict[str, Any]:
    """Charts, then the Slack report (unless a scheduled run found everything ok). Returns what was sent."""
    from toilless.common.config import load_config
    from toilless.common.reporting import send_report, upload_file
    from toilless.rds_storage_chart import render_storage_chart

    settings = load_config("rds_storage_guard")
    report = settings["report"]
    ti = context["ti"]
    approval = ti.xcom_pull(task_ids="request_approval")
    expansions = ti.xcom_pull(task_ids="expand_allocated_storage", key="expansions")
    verification = ti.xcom_pull(task_ids="verify_expansion")
    lines = report_lines(plan, approval=approval, expansions=expansions, verification=verification, tables=tables)
    decisions = plan["decisions"]
    worst = rs.worst_state(d["state"] for d in decisions)
    acted = any(d["action"] != rs.NONE for d in decisions)
    run_type = str(getattr(context.get("dag_run"), "run_type", ""))
    scheduled = run_type.endswith("scheduled")
    if scheduled and worst == rs.OK and not acted and not report.get("post_when_all_ok"):
        log.info("Scheduled run, every instance ok: no report posted")
        return {"posted": False, "lines": lines, "charts": [], "state": worst}
    fingerprint = report_fingerprint(decisions)
    now = time.time()
    if scheduled and not expansions and not approval:
        # A warning that stays a warning is told again after repeat_hours, not every 30 minutes.
        repeat, why = should_repeat(_last_report(), fingerprint, now, float(report.get("repeat_unchanged_hours", 24)))
        if not repeat:
            log.info("No report posted: %s", why)
            return {"posted": False, "lines": lines, "charts": [], "state": worst, "why": why}

    channel = report["channel"]
    history = {m["description"]["DBInstanceIdentifier"]: m["free_storage"] for m in measured["instances"]}
    chart_dir = _chart_dir(report["chart_dir"], context)
    charts = []
    for decision in decisions:
        if decision["state"] not in (rs.WARNING, rs.CRITICAL):
            continue
        path = render_storage_chart(
            decision,
            history.get(decision["instance_id"], []),
            chart_dir / f"{decision['instance_id']}.png",
            forecast_days=float(report.get("forecast_days", 30)),
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
    status = {rs.OK: "ok", rs.WARNING: "warning", rs.CRITICAL: "critical"}.get(worst, "info")
    send_report(context, channel=channel, title=title, lines=lines, status=status)
    _remember_report(fingerprint, now)
    return {"posted": True, "lines": lines, "charts": charts, "state": worst, "channel": channel}


def _last_report() -> dict[str, Any] | None:
    from toilless.common.state import read_state

    return read_state(LAST_REPORT_VARIABLE) or None


def _remember_report(fingerprint: str, now: float) -> None:
    from toilless.common.state import write_state

    write_state(LAST_REPORT_VARIABLE, {"fingerprint": fingerprint, "posted_at": now})


def _chart_dir(configured: str, context: Mapping[str, Any]) -> Path:
    base = Path(configured)
    if not base.is_absolute():
        base = Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / base
    run_id = str(context.get("run_id", "run")).replace(":", "_").replace("/", "_")
    return base / run_id
