"""What order_backlog_check tells people: Ops, the developers, on-call, and the record. Pure, no Airflow import.

Inputs are the JSON-able results the DAG's steps hand each other (diagnosis, backlog, log summary, restart). Much of
it comes from outside Toilless (log lines, order ids and error numbers from the log, file names, error text), so
every such value goes through ``toilless.common.slack`` (escaped, bounded, secrets masked) and every message states
what was cut.
"""

from __future__ import annotations

from typing import Any

from toilless.common.slack import Mrkdwn, code_block, escape, header, section, truncate
from toilless.sops.order_backlog_check.verdict import format_duration

#: Characters of one outside value (a reason, a file name, a restart's answer) inside a message line.
VALUE_LIMIT = 300
#: Characters of a quoted log excerpt (one code block inside a 3,000-character section).
EXCERPT_LIMIT = 2600
#: Order/error pairs listed in a message.
LISTED_ERRORS = 10


def _dry_run_prefix(settings: dict[str, Any]) -> str:
    # The diagnosis is real in a dry run, but readers must know nothing was or will be done about it.
    return "[dry run] " if settings.get("dry_run") else ""


def _reasons(verdict: dict[str, Any]) -> str:
    """The verdict's reasons (they quote order ids and error numbers from the log) as escaped text."""
    return "; ".join(escape(reason, VALUE_LIMIT) for reason in (verdict.get("reasons") or [])[:5])


def _bullets(facts: list[str]) -> str:
    return "\n".join(f"• {fact}" for fact in facts)


def ops_message(diagnosis: dict[str, Any], backlog: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Overloaded: the numbers and the suggested run frequency, for Ops to decide."""
    capacity = diagnosis["capacity"]
    processor = settings["processor"]
    interval = processor["run_interval_minutes"]
    title = _dry_run_prefix(settings) + "Order processor overloaded: please consider running it more often"
    facts = [
        f"*Outstanding orders:* {backlog['outstanding']} (threshold {settings['thresholds']['outstanding_orders']})",
        f"*Oldest waiting:* {format_duration(backlog.get('oldest_age_minutes'))}; "
        f"{backlog.get('overdue', 0)} orders older than {settings['thresholds']['oldest_order_age_minutes']} min",
        f"*Capacity per run:* {capacity['capacity_per_run']} orders "
        f"({processor['processes']} processes x {processor['orders_at_a_time']} orders, "
        f"{capacity['seconds_per_order']} s/order {escape(capacity['seconds_per_order_source'], 100)}, "
        f"every {interval} min); best case {capacity['capacity_per_run_best']}",
        f"*Throughput:* {capacity['throughput_per_hour']} orders/h; draining the backlog takes "
        f"{format_duration(capacity['drain_minutes'])}",
        f"*Suggestion:* run it every *{capacity['suggested_interval_minutes']} min* instead of every {interval} min "
        f"({capacity['runs_needed']} runs' worth of orders are waiting), or run "
        f"{capacity['suggested_processes']} processes to clear it within one interval.",
    ]
    reasons = _reasons(diagnosis["verdict"])
    text = f"{title}\n{_bullets(facts)}\nWhy: {reasons}"
    blocks = [header(title), section(_bullets(facts)), section(f"*Why:* {reasons}")]
    return {"text": text, "blocks": blocks}


def _errors_fact(run: dict[str, Any]) -> str | None:
    errors = run.get("errors") or {}
    if not errors:
        return None
    top = sorted(errors.items(), key=lambda item: (-item[1], item[0]))[:LISTED_ERRORS]
    listed = ", ".join(f"{escape(key, 100)}: {count}" for key, count in top)
    shown = dict(top)
    # The summary lists the most frequent pairs and counts the rest; this message lists fewer still.
    not_listed = int(run.get("errors_not_listed") or 0)
    not_listed += sum(count for key, count in errors.items() if key not in shown)
    if not_listed:
        distinct = int(run.get("errors_distinct") or len(errors))
        more = "at least " if run.get("errors_distinct_capped") else ""
        listed += (
            f"; {not_listed:,} more errors of {more}{max(distinct - len(top), 0):,} other order/error pairs not listed"
        )
    return "*Errors (order/error: count):* " + listed


def _excerpt(lines: list[str] | None) -> str:
    """The quoted log lines as one code block, bounded, saying what was cut (the newest lines are kept)."""
    text = "\n".join(lines or [])
    if not text:
        return code_block("(empty log)")
    if len(text) > EXCERPT_LIMIT:
        cut = len(text) - EXCERPT_LIMIT
        text = f"… ({cut:,} earlier characters cut)\n" + text[-EXCERPT_LIMIT:]
    return code_block(text, limit=EXCERPT_LIMIT + 100)


def developers_message(
    diagnosis: dict[str, Any], backlog: dict[str, Any], run: dict[str, Any], settings: dict[str, Any]
) -> dict[str, Any]:
    """Stuck, errors or silent: the order, the error, and the log lines that show it."""
    verdict = diagnosis["verdict"]
    kind = verdict["verdict"]
    order = escape(verdict.get("stuck_order"), 80)
    code = escape(verdict.get("error_code"), 80)
    if kind == "stuck":
        title = f"Order processor stuck on order {verdict.get('stuck_order')} with Error #{verdict.get('error_code')}"
    elif kind == "crashed_silent":
        title = "Order processor crashed or silent: no progress in its log"
    else:
        title = f"Order processor logged {run.get('error_count', 0)} errors in its latest run"
    title = _dry_run_prefix(settings) + title
    sources = [escape(source, 200) for source in (run.get("sources") or [])[:10]]
    facts = [
        f"*Verdict:* {escape(kind, 40)}: {_reasons(verdict)}",
        f"*Outstanding orders:* {backlog['outstanding']}, oldest waiting "
        f"{format_duration(backlog.get('oldest_age_minutes'))}",
        f"*Latest run:* started {escape(run.get('started_at') or 'unknown', 40)}, "
        f"{run.get('orders_processed', 0)} orders processed, last progress "
        f"{format_duration(verdict.get('minutes_since_progress'))} ago",
        f"*Log:* {', '.join(sources) or 'none read'}",
    ]
    if kind == "stuck":
        facts.insert(0, f"*Order:* {order}  *Error:* #{code} (repeated {verdict.get('error_repeats')} times)")
    if errors := _errors_fact(run):
        facts.append(errors)
    notes = [escape(note, VALUE_LIMIT) for note in (run.get("notes") or [])[:10]]
    if notes:
        facts.append("*Cut or skipped while reading:* " + "; ".join(notes))
    excerpt = _excerpt(run.get("excerpt"))
    # The plain-text fallback: escaped title and facts, and the excerpt as the same bounded code block.
    text = truncate(f"{escape(title, 300)}\n{_bullets(facts)}\nLog excerpt:\n{excerpt}", 12_000)
    blocks = [
        header(title),
        section(_bullets(facts)),
        section(f"*Log excerpt (last lines of the run):*\n{excerpt}"),
    ]
    if run.get("error_excerpt") and kind != "stuck":
        blocks.append(section(f"*First error:*\n{_excerpt(run['error_excerpt'])}"))
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
    incident a restart already failed to cure (a second restart is never made). ``lines`` are mrkdwn built from
    escaped values (``toilless.common.reporting.render_report`` posts them as they are).
    """
    verdict = diagnosis["verdict"]
    kind = verdict["verdict"]
    restart = restart or {}
    reason = escape(restart.get("reason", "not decided"), VALUE_LIMIT)
    lines = [
        f"Verdict: *{escape(kind, 40)}*: {_reasons(verdict)}",
        f"Backlog: {backlog['outstanding']} outstanding, oldest {format_duration(backlog.get('oldest_age_minutes'))}",
    ]
    escalate = False
    escalation = ""
    incident = escape(verdict.get("incident_key"), 200)
    if verdict.get("restartable"):
        if restart.get("restarted"):
            lines.append(
                f"Restarted ({escape(restart.get('method'), 40)} {escape(restart.get('target', ''), 200)}) "
                f"at {escape(restart.get('restarted_at'), 60)}"
            )
        elif restart.get("allowed_from"):
            lines.append(f"Restart not done: {reason}; allowed from {escape(restart['allowed_from'], 60)}")
        else:
            lines.append(f"Restart not done: {reason}")
        if restart.get("already_done"):
            escalate = True
            escalation = (
                f"Order processor still {escape(kind, 40)} after a restart for the same incident "
                f"({incident}): a person must look now. {reason}"
            )
    if verification:
        detail = escape(verification.get("detail"), VALUE_LIMIT)
        if verification.get("status") == "recovered":
            lines.append(f"Recovery verified: {detail}")
        else:
            lines.append(f"Recovery NOT seen within {settings['verify']['timeout_minutes']} min: {detail}")
            escalate = True
            escalation = (
                f"Order processor restarted at {escape(restart.get('restarted_at'), 60)} but has not recovered "
                f"within {settings['verify']['timeout_minutes']} min ({detail}); "
                f"{escape(verification.get('outstanding', backlog['outstanding']), 20)} orders outstanding."
            )
    if settings.get("dry_run"):
        lines.append("Dry run: nothing was changed.")
    status = "critical" if escalate else "ok" if kind == "healthy" else "warning"
    title = {
        "healthy": "Order backlog: processor healthy",
        "overloaded": "Order backlog: processor overloaded (Ops asked)",
        "stuck": f"Order backlog: processor stuck on order {escape(verdict.get('stuck_order'), 80)}",
        "crashed_silent": "Order backlog: processor crashed or silent",
        "errors": "Order backlog: processor logs errors",
    }.get(kind, f"Order backlog: {escape(kind, 40)}")
    return {
        "status": status,
        "title": title,
        # Built from escaped values above: Mrkdwn, so render_report does not escape them a second time.
        "lines": [Mrkdwn(line) for line in lines],
        "escalate": escalate,
        "escalation_text": f":rotating_light: {escalation}" if escalate else "",
        # Healthy hourly runs are not news; everything else is part of the incident's record.
        "worth_reporting": kind != "healthy" or backlog["outstanding"] > settings["thresholds"]["outstanding_orders"],
    }
