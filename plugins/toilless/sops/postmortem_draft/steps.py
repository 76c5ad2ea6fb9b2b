"""Task bodies of ``postmortem_draft``: choose incidents, draft, file once in GitHub, post, record."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from toilless.common import slack
from toilless.incidents import events as ev

log = logging.getLogger(__name__)

#: Incidents drafted by one automatic run (the rest wait for the next run).
MAX_PER_RUN = 20


def choose_incidents(params: Mapping[str, Any]) -> list[str]:
    """The manual run's ``incident_id``, else resolved P0/P1 incidents without a draft yet."""
    from toilless.incidents import db, store
    from toilless.incidents.settings import load_settings

    engine = db.engine()
    wanted = str(params.get("incident_id") or "").strip().lower()
    if wanted:
        if store.get_incident(engine, wanted[:64]) is None:
            raise ev.UnknownIncident(f"no incident {wanted[:64]!r}")
        return [wanted]
    settings = load_settings().get("postmortem", {})
    since = time.time() - float(settings.get("lookback_hours", 72)) * 3600
    rows = store.resolved_without_postmortem(engine, settings.get("auto_severities", ["P0", "P1"]), since)
    return [row["incident_id"] for row in rows[:MAX_PER_RUN]]


def recurring_count(engine: Any, alertname: str, *, days: int = 30) -> int:
    from sqlalchemy import func, select

    from toilless.incidents import store

    since = time.time() - days * 86400
    query = select(func.count()).where(store.incident.c.alertname == alertname, store.incident.c.opened_at >= since)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def file_drafts(incident_ids: list[str], dry_run: bool) -> list[dict[str, Any]]:
    from toilless.common.reporting import post_message
    from toilless.hooks.github_issues import GithubIssueHook
    from toilless.incidents import db, record, store
    from toilless.incidents.settings import load_settings
    from toilless.sops.postmortem_draft.template import marker, render

    settings = load_settings()
    github = settings.get("postmortem", {})
    engine = db.engine()
    results = []
    for incident_id in incident_ids:
        incident = store.get_incident(engine, incident_id)
        if incident is None:
            continue
        title, body = render(
            incident,
            store.timeline(engine, incident_id),
            recurring=recurring_count(engine, incident["alertname"]),
            epic_issue=int(github.get("epic_issue") or 0),
        )
        if dry_run:
            results.append({"incident_id": incident_id, "dry_run": True, "title": title, "chars": len(body)})
            continue
        hook = GithubIssueHook(github_conn_id=github.get("github_conn_id", "github_incidents"))
        repo, label = str(github["repo"]), str(github.get("label", "postmortem"))
        # Never twice: an issue carrying this incident's marker (filed by an earlier try) is reused.
        found = hook.existing_fingerprints(repo, label, [marker(incident_id)])
        url = found.get(marker(incident_id))
        filed = url is None
        if filed:
            url = hook.create_issue(
                repo, title=title, body=body, labels=[label], epic_issue=int(github.get("epic_issue") or 0)
            )["url"]
        record(
            ev.POSTMORTEM_FILED,
            incident_id=incident_id,
            summary=f"post-mortem draft {url}",
            data={"url": url},
            dedupe="postmortem",
        )
        if filed:
            text = slack.mrkdwn(
                ":memo: Post-mortem draft for {} {} ({}): {}",
                slack.escape(incident["severity"], 4),
                slack.code(incident["alertname"], 200),
                slack.code(incident_id, 70),
                slack.link(url, "the issue", slack.allowed_link_hosts(_toilless())),
            )
            post_message(str(settings.get("incident_channel") or "urgent"), text, blocks=[slack.section(text)])
        results.append({"incident_id": incident_id, "url": url, "filed": filed})
    return results


def _toilless() -> dict[str, Any]:
    from toilless.common.config import load_config

    return load_config("toilless")
