"""redis_connections' report: plain text lines (``toilless.common.reporting`` escapes them and fits them to Slack).

Client names and addresses come from the clients (anyone who connects chooses a name): shown bounded, secrets
masked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from toilless.common.redaction import mask_secrets


def report_status(diagnosis: Mapping[str, Any]) -> str:
    level = diagnosis["assessment"]["level"]
    return {"critical": "error", "warning": "warning"}.get(level, "ok")


def _groups(label: str, rows: list[Any]) -> str:
    return f"by {label}: " + ", ".join(f"{mask_secrets(str(value))} {count:,}" for value, count in rows)


def report_lines(settings: Mapping[str, Any], diagnosis: Mapping[str, Any], outcome: Mapping[str, Any]) -> list[str]:
    figures = diagnosis["figures"]
    assessment = diagnosis["assessment"]
    pct = figures["connected_pct"]
    lines = [
        f"Redis {settings['redis_conn_id']}: {assessment['level'].upper()}",
        f"connections: {figures['connected']:,} of maxclients {figures['maxclients']:,}"
        + (f" ({pct:.0f}%)" if pct is not None else "")
        + f", {figures['blocked']:,} blocked, {figures['rejected_total']:,} rejected in all, "
        f"{figures['rejected_per_minute']:.1f} rejected/min over {figures['sample_seconds']:g} s",
    ]
    lines += [f"finding: {finding}" for finding in assessment["findings"]]
    lines += [f"advice: {advice}" for advice in assessment["advice"]]
    groups = diagnosis["groups"]
    for label, key in (
        ("client name", "name"),
        ("address", "host"),
        ("idle time", "idle"),
        ("last command", "command"),
    ):
        if groups[key]:
            lines.append(_groups(label, groups[key]))
    if diagnosis["listed"] < diagnosis["listed_total"]:
        lines.append(f"CLIENT LIST: only the first {diagnosis['listed']:,} of {diagnosis['listed_total']:,} read")
    lines += _outcome_lines(settings, outcome)
    if settings.get("dry_run_by_config"):
        lines.append("dry run by configuration (dry_run in the config): set it to false there to let it act")
    return lines + list(settings.get("notes") or [])


def _outcome_lines(settings: Mapping[str, Any], outcome: Mapping[str, Any]) -> list[str]:
    lines = [f"ending idle connections: {outcome['reason']}"]
    if not outcome.get("planned"):
        return lines
    line = f"ended {outcome['ended_count']:,} of {outcome['chosen']:,} idle connection(s)"
    if outcome["left_alone"]:
        line += f"; {outcome['left_alone']:,} used, renamed or closed meanwhile and left alone"
    lines.append(line)
    if outcome["ended"]:
        lines.append(
            "ended: "
            + ", ".join(
                f"id {client['id']} {mask_secrets(client['name'])}@{mask_secrets(client['host'])} "
                f"(idle {client['idle']:,} s)"
                for client in outcome["ended"][:20]
            )
        )
    if outcome.get("refused"):
        lines.append(f"stopped: {outcome['refused']}")
    lines.append(
        f"total this run: {outcome['run_total']:,} of at most {settings['kill']['max_clients_per_run']:,}; "
        f"{outcome['connected_after']:,} connected now"
    )
    return lines
