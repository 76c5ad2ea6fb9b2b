"""The approval request's text and the one-line summary of a decision (used by the logs and the report)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from toilless.sops.rds_storage_guard.growth_plan import BLOCKED, GROW_NOW, NONE, RECOMMEND_AUTOSCALING, REQUEST_APPROVAL


def approval_text(decisions: Sequence[Mapping[str, Any]], timeout_minutes: float) -> tuple[str, str]:
    """Subject and Markdown body of the approval request: what changes, that it is permanent, what it costs."""
    ids = ", ".join(d["instance_id"] for d in decisions)
    subject = f"Grow RDS storage (permanent): {ids}"
    lines = [
        "The RDS storage guard asks to **increase allocated storage**. This is **permanent**: RDS cannot shrink "
        "allocated storage afterwards.",
        "",
    ]
    total = 0.0
    for d in decisions:
        total += d["monthly_cost_delta"]
        forecast = d.get("forecast") or {}
        lines.append(
            f"- `{d['instance_id']}` ({d['storage_type']}{', Multi-AZ' if d.get('multi_az') else ''}): "
            f"{d['allocated_gib']} GiB -> **{d['target_gib']} GiB** (+{d['increase_gib']} GiB), "
            f"+{d['monthly_cost_delta']:.2f} {d['currency']}/month; now {forecast.get('used_pct', 0):.1f}% used"
            + _days_text(forecast)
        )
        if d.get("new_max_allocated_gib"):
            lines.append(f"  - storage autoscaling limit rises to {d['new_max_allocated_gib']} GiB as well")
    currency = decisions[0]["currency"] if decisions else "USD"
    lines += [
        "",
        f"Total monthly cost delta: **+{total:.2f} {currency}/month**.",
        f"Approve to apply immediately. Reject, or no answer within {timeout_minutes:g} minutes, changes nothing.",
    ]
    return subject, "\n".join(lines)


def _days_text(forecast: Mapping[str, Any]) -> str:
    days = forecast.get("days_until_full")
    return f", full in {days:.1f} days" if days is not None else ""


def instance_line(decision: Mapping[str, Any]) -> str:
    """One report line: state, forecast and the decided action."""
    action = decision["action"]
    label = {
        NONE: "no action",
        RECOMMEND_AUTOSCALING: "recommend storage autoscaling",
        REQUEST_APPROVAL: f"approval requested to grow to {decision.get('target_gib')} GiB",
        GROW_NOW: f"automatic growth to {decision.get('target_gib')} GiB",
        BLOCKED: f"blocked ({decision.get('blocked_reason')})",
    }.get(action, action)
    return (
        f"`{decision['instance_id']}` {decision['state'].upper()} ({decision['allocated_gib']} GiB "
        f"{decision['storage_type']}): {label}. {decision['reason']}"
    )
