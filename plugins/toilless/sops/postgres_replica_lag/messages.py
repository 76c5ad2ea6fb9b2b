"""The report of postgres_replica_lag (every value from the servers is outside text: escaped by the report). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from toilless.common import slack

TITLE = "PostgreSQL replica lag"


def report(settings: Mapping[str, Any], diagnosis: Mapping[str, Any], outcome: Mapping[str, Any]) -> dict[str, Any]:
    lines: list[Any] = []
    if diagnosis["primary"].get("error"):
        lines.append(
            slack.mrkdwn("Primary {}: {}", slack.code(settings["primary_conn_id"]), diagnosis["primary"]["error"])
        )
    for replica in diagnosis["replicas"]:
        lag = "unknown" if replica["lag_seconds"] is None else f"{replica['lag_seconds']} s"
        causes = ", ".join(replica["causes"]) or "none"
        lines.append(
            slack.mrkdwn(
                "*Replica {}*: {} behind ({} bytes), {}; causes: {}",
                slack.code(replica["name"]),
                lag,
                f"{replica['lag_bytes'] or 0:,}",
                replica["level"],
                causes,
            )
        )
        lines += [f"  {line}" for line in replica["evidence"]]
        lines += [f"  → {line}" for line in replica["recommendations"]]
    for result in outcome.get("results", []):
        verb = {"done": "Done", "dry_run": "Would act"}.get(result["status"], "Not done")
        lines.append(
            slack.mrkdwn("{} ({} on {}): {}", verb, result["kind"], slack.code(result["replica"]), result["reason"])
        )
    lines += list(settings.get("notes") or [])
    level = diagnosis["level"]
    status = {"critical": "critical", "warning": "warning", "unknown": "warning"}.get(level, "ok")
    title = f"{TITLE} (dry run: nothing was changed)" if settings["dry_run"] else TITLE
    return {"title": title, "status": status, "lines": lines}
