"""The report of postgres_connections: lines built with ``toilless.common.slack`` (every name and query from the
server is outside text: escaped, bounded, secrets masked). Pure, no Airflow."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from toilless.common import slack

TITLE = "PostgreSQL connections"


def report(settings: Mapping[str, Any], diagnosis: Mapping[str, Any], outcome: Mapping[str, Any]) -> dict[str, Any]:
    """Title, status and lines of the run's report."""
    usage = diagnosis["usage"]
    lines: list[Any] = [_usage_line(settings, usage)]
    breakdown = diagnosis["breakdown"]
    for dimension, label in (
        ("state", "By state"),
        ("application", "By application"),
        ("usename", "By user"),
        ("client", "By client"),
        ("age", "By session age"),
    ):
        lines.append(_counts(label, breakdown[dimension], breakdown.get(f"{dimension}_others", 0)))
    lines += _sessions(
        "Long-running queries",
        diagnosis["long_queries"],
        diagnosis["long_queries_total"],
        settings["long_query_seconds"],
        "query_seconds",
    )
    lines += _sessions(
        "Idle in transaction",
        diagnosis["idle_in_transaction"],
        diagnosis["idle_in_transaction_total"],
        settings["idle_in_transaction_seconds"],
        "state_seconds",
    )
    for chain in diagnosis["chains"]:
        lines.append(
            slack.mrkdwn(
                "Blocking: pid {} ({}, {}, {}) holds up {} session(s), chain depth {}: {}",
                chain["pid"],
                chain.get("application_name") or "(none)",
                chain.get("usename") or "(none)",
                chain.get("state") or "?",
                chain["waiting"],
                chain["depth"],
                slack.code(chain.get("query") or "", 300),
            )
        )
    lines += _actions(settings, diagnosis, outcome)
    for pool in diagnosis["pools"]:
        lines.append(
            slack.mrkdwn(
                "Pool {}: {} session(s) ({} active, {} idle, {} idle in transaction) vs pool {}: {}",
                slack.code(pool["application"]),
                pool["sessions"],
                pool["active"],
                pool["idle"],
                pool["idle_in_transaction"],
                pool["pool"],
                pool["advice"],
            )
        )
    if diagnosis.get("pools_vs_capacity"):
        lines.append(diagnosis["pools_vs_capacity"])
    lines += list(settings.get("notes") or [])
    status = "critical" if usage["level"] == "critical" else "warning" if usage["level"] == "warning" else "ok"
    if status == "ok" and (diagnosis["chains"] or diagnosis["idle_in_transaction_total"]):
        status = "warning"
    title = f"{TITLE} (dry run: nothing was changed)" if settings["dry_run"] else TITLE
    return {"title": title, "status": status, "lines": lines}


def _usage_line(settings: Mapping[str, Any], usage: Mapping[str, Any]) -> slack.Mrkdwn:
    reserved = f"{usage['superuser_reserved_connections']} reserved for superusers"
    if usage.get("reserved_connections") is not None:
        reserved += f", {usage['reserved_connections']} for pg_use_reserved_connections"
    return slack.mrkdwn(
        "*{}*: {} client sessions of {} slots for ordinary roles ({} %; max_connections {}, {}); {} free",
        slack.code(settings["postgres_conn_id"]),
        usage["client_sessions"],
        usage["available_to_ordinary_roles"],
        usage["used_pct"],
        usage["max_connections"],
        reserved,
        usage["free_slots"],
    )


def _counts(label: str, pairs: list[list[Any]], others: int) -> slack.Mrkdwn:
    shown = slack.join(slack.mrkdwn("{} {}", name, count) for name, count in pairs) if pairs else "none"
    more = f", {others} in others" if others else ""
    return slack.mrkdwn("{}: {}{}", label, shown, more)


def _sessions(label: str, sessions: list[dict[str, Any]], total: int, threshold: float, age_key: str) -> list[Any]:
    if not total:
        return []
    lines: list[Any] = [f"{label} over {threshold:g} s: {total}"]
    for session in sessions:
        lines.append(
            slack.mrkdwn(
                "  pid {} {} / {} from {}, {} s: {}",
                session["pid"],
                slack.code(session["application_name"] or "(none)", 80),
                slack.code(session["usename"], 80),
                session["client"],
                f"{session.get(age_key) or 0:.0f}",
                slack.code(session["query"], 300),
            )
        )
    if total > len(sessions):
        lines.append(f"  … and {total - len(sessions)} more")
    return lines


def _actions(settings: Mapping[str, Any], diagnosis: Mapping[str, Any], outcome: Mapping[str, Any]) -> list[Any]:
    lines: list[Any] = []
    if not settings["allowed_applications"]:
        lines.append("Ending sessions: no application is on the allow-list, so none is ended (advice only)")
    elif not settings["end_sessions"]:
        lines.append("Ending sessions is switched off: advice only")
    for result in outcome.get("results", []):
        verb = {"ended": "Ended", "dry_run": "Would end"}.get(result["status"], "Not ended")
        lines.append(
            slack.mrkdwn(
                "{} pid {} ({}, {}): {}",
                verb,
                result["pid"],
                slack.code(result.get("application_name") or "(none)", 80),
                slack.code(result.get("usename") or "(none)", 80),
                result["reason"],
            )
        )
    if diagnosis["over_cap"]:
        lines.append(
            f"{diagnosis['over_cap']} more eligible session(s) left alone: at most "
            f"{settings['max_terminations_per_run']} are ended per run"
        )
    for kind, count in sorted(diagnosis.get("refused_counts", {}).items()):
        lines.append(slack.mrkdwn("Not ended: {} session(s) of {}", count, kind))
    return lines
