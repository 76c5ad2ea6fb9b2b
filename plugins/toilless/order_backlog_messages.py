"""What order_backlog_check tells people: Ops, the developers, on-call, and the record. Pure, no Airflow import.

Inputs are the JSON-able results the DAG's steps hand each other (diagnosis, backlog, log summary, restart).
"""

from __future__ import annotations

from typing import Any

from toilless.order_processor import format_duration


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:150]}}


def _dry_run_prefix(settings: dict[str, Any]) -> str:
    # The diagnosis is real in a dry run, but readers must know nothing was or will be done about it.
    return "[dry run] " if settings.get("dry_run") else ""


def ops_message(diagnosis: dict[str, Any], backlog: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Overloaded: the numbers and the suggested run frequency, for Ops to decide."""
    capacity = diagnosis["capacity"]
    processor = settings["processor"]
    interval = processor["run_interval_minutes"]
    title = "Order processor overloaded: please consider running it more often"
    facts = [
        f"*Outstanding orders:* {backlog['outstanding']} (threshold {settings['thresholds']['outstanding_orders']})",
        f"*Oldest waiting:* {format_duration(backlog.get('oldest_age_minutes'))}; "
        f"{backlog.get('overdue', 0)} orders older than {settings['thresholds']['oldest_order_age_minutes']} min",
        f"*Capacity per run:* {capacity['capacity_per_run']} orders "
        f"({processor['processes']} processes x {processor['orders_at_a_time']} orders, "
        f"{capacity['seconds_per_order']} s/order {capacity['seconds_per_order_source']}, every {interval} min); "
        f"best case {capacity['capacity_per_run_best']}",
        f"*Throughput:* {capacity['throughput_per_hour']} orders/h; draining the backlog takes "
        f"{format_duration(capacity['drain_minutes'])}",
        f"*Suggestion:* run it every *{capacity['suggested_interval_minutes']} min* instead of every {interval} min "
        f"({capacity['runs_needed']} runs' worth of orders are waiting), or run "
        f"{capacity['suggested_processes']} processes to clear it within one interval.",
    ]
    title = _dry_run_prefix(settings) + title
    reasons = "; ".join(diagnosis["verdict"]["reasons"])
    text = f"{title}\n" + "\n".join(f"• {fact}" for fact in facts) + f"\nWhy: {reasons}"
    blocks = [_header(title), _section("\n".join(f"• {fact}" for fact in facts)), _section(f"*Why:* {reasons}")]
    return {"text": text, "blocks": blocks}


def developers_message(
    diagnosis: dict[str, Any], backlog: dict[str, Any], run: dict[str, Any], settings: dict[str, Any]
) -> dict[str, Any]:
    """Stuck, errors or silent: the order, the error, and the log lines that show it."""
    verdict = diagnosis["verdict"]
    kind = verdict["verdict"]
    if kind == "stuck":
        title = f"Order processor stuck on order {verdict['stuck_order']} with Error #{verdict['error_code']}"
    elif kind == "crashed_silent":
        title = "Order processor crashed or silent: no progress in its log"
    else:
        title = f"Order processor logged {run.get('error_count', 0)} errors in its latest run"
    title = _dry_run_prefix(settings) + title
    facts = [
        f"*Verdict:* {kind}: {'; '.join(verdict['reasons'])}",
        f"*Outstanding orders:* {backlog['outstanding']}, oldest waiting "
        f"{format_duration(backlog.get('oldest_age_minutes'))}",
        f"*Latest run:* started {run.get('started_at') or 'unknown'}, {run.get('orders_processed', 0)} orders "
        f"processed, last progress {format_duration(verdict.get('minutes_since_progress'))} ago",
        f"*Log:* {', '.join(run.get('sources') or []) or 'none read'}",
    ]
    if kind == "stuck":
        facts.insert(
            0,
            f"*Order:* {verdict['stuck_order']}  *Error:* #{verdict['error_code']} "
            f"(repeated {verdict['error_repeats']} times)",
        )
    errors = run.get("errors") or {}
    if errors:
        top = sorted(errors.items(), key=lambda item: -item[1])[:10]
        facts.append("*Errors (order/error: count):* " + ", ".join(f"{key}: {count}" for key, count in top))
    excerpt = "\n".join(run.get("excerpt") or []) or "(empty log)"
    text = f"{title}\n" + "\n".join(f"• {fact}" for fact in facts) + f"\nLog excerpt:\n{excerpt}"
    blocks = [
        _header(title),
        _section("\n".join(f"• {fact}" for fact in facts)),
        _section(f"*Log excerpt (last lines of the run):*\n```{excerpt[-2700:]}```"),
    ]
    if run.get("error_excerpt") and kind != "stuck":
        blocks.append(_section("*First error:*\n```" + "\n".join(run["error_excerpt"])[-2700:] + "```"))
    return {"text": text, "blocks": blocks}


def outcome_report(
    diagnosis: dict[str, Any],
    backlog: dict[str, Any],
    restart: dict[str, Any] | None,
    verification: dict[str, Any] | None,
    settings: dict[str, Any],
) -> dict[str, Any]:
    """The record of the run, and whether on-call must be paged.

    Escalate when a restart did not bring the processor back in time, or when the processor is stuck on an
    incident a restart already failed to cure (a second restart is never made).
    """
    verdict = diagnosis["verdict"]
    kind = verdict["verdict"]
    restart = restart or {}
    lines = [
        f"Verdict: *{kind}*: {'; '.join(verdict['reasons'])}",
        f"Backlog: {backlog['outstanding']} outstanding, oldest {format_duration(backlog.get('oldest_age_minutes'))}",
    ]
    escalate = False
    escalation = ""
    if verdict.get("restartable"):
        if restart.get("restarted"):
            lines.append(
                f"Restarted ({restart.get('method')} {restart.get('target', '')}) at {restart['restarted_at']}"
            )
        elif restart.get("allowed_from"):
            lines.append(f"Restart not done: {restart.get('reason')}; allowed from {restart['allowed_from']}")
        else:
            lines.append(f"Restart not done: {restart.get('reason', 'not decided')}")
        if restart.get("already_done"):
            escalate = True
            escalation = (
                f"Order processor still {kind} after a restart for the same incident "
                f"({verdict.get('incident_key')}): a person must look now. {restart.get('reason')}"
            )
    if verification:
        if verification.get("status") == "recovered":
            lines.append(f"Recovery verified: {verification.get('detail')}")
        else:
            lines.append(
                f"Recovery NOT seen within {settings['verify']['timeout_minutes']} min: {verification.get('detail')}"
            )
            escalate = True
            escalation = (
                f"Order processor restarted at {restart.get('restarted_at')} but has not recovered within "
                f"{settings['verify']['timeout_minutes']} min ({verification.get('detail')}); "
                f"{verification.get('outstanding', backlog['outstanding'])} orders outstanding."
            )
    if settings.get("dry_run"):
        lines.append("Dry run: nothing was changed.")
    status = "critical" if escalate else "ok" if kind == "healthy" else "warning"
    title = {
        "healthy": "Order backlog: processor healthy",
        "overloaded": "Order backlog: processor overloaded (Ops asked)",
        "stuck": f"Order backlog: processor stuck on order {verdict.get('stuck_order')}",
        "crashed_silent": "Order backlog: processor crashed or silent",
        "errors": "Order backlog: processor logs errors",
    }.get(kind, f"Order backlog: {kind}")
    return {
        "status": status,
        "title": title,
        "lines": lines,
        "escalate": escalate,
        "escalation_text": f":rotating_light: {escalation}" if escalate else "",
        # Healthy hourly runs are not news; everything else is part of the incident's record.
        "worth_reporting": kind != "healthy" or backlog["outstanding"] > settings["thresholds"]["outstanding_orders"],
    }
