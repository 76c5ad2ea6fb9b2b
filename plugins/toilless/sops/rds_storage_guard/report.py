"""The storage report's text: per instance state, forecast, action and outcome; when a scheduled report repeats.

Pure: ``steps.report_storage`` reads the XComs and the last report, renders the charts and posts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from toilless.common import slack
from toilless.sops.rds_storage_guard.forecasting import GIB
from toilless.sops.rds_storage_guard.growth_plan import GROW_NOW, REQUEST_APPROVAL
from toilless.sops.rds_storage_guard.messages import instance_line

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
        lines.append(instance_line(decision))
        action = decision["action"]
        if action in (GROW_NOW, REQUEST_APPROVAL):
            if plan.get("dry_run"):
                lines.append(f"    dry run: would grow to {decision['target_gib']} GiB; nothing changed")
            else:
                if action == REQUEST_APPROVAL:
                    lines.append(f"    {outcome_text}")
                if instance_id in expanded:
                    lines.append(_expansion_text(expanded[instance_id], verified.get(instance_id)))
                elif action == GROW_NOW or outcome == "approved":
                    lines.append("    not grown: the growth step did not complete (see the failure alert)")
        if action in (GROW_NOW, REQUEST_APPROVAL) and decision.get("monthly_cost_delta"):
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
    if abs(size_bytes) >= GIB:
        return f"{size_bytes / GIB:{sign}.2f} GiB"
    return f"{size_bytes / 1024**2:{sign}.1f} MiB"
