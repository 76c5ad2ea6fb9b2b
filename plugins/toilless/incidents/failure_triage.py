"""Airflow failure triage, completed (SOPS.md "Alert handling"): a preprod task or code failure files one GitHub
issue per DAG + task + error signature, assigned to the DAG owner's GitHub handle (``failure_issues.owner_handles``),
under the configured epic (a repeat of the signature comments on that issue: which run, which error, the log); infrastructure failures go to the infrastructure owner; ``test.`` DAGs need no action.

:func:`plan_issue` and :func:`error_signature` are pure. :func:`after_failure` is the shared failure notifier's one
call: it also notes the failure on the run's incident timeline (``runbook_finished``), and never raises: a failure
notice must not fail because GitHub is away.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from toilless.incidents.markdown import md

log = logging.getLogger(__name__)

#: What varies between two occurrences of the same error: ids, numbers, quoted values, addresses.
_VARYING = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I), "<uuid>"),
    (re.compile(r"0x[0-9a-f]+|\b[0-9a-f]{12,}\b", re.I), "<hex>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<str>"),
    (re.compile(r"\d+"), "<n>"),
]


def error_signature(dag_id: str, task_id: str, error_type: str | None, error_first_line: str) -> str:
    """16 hex digits naming one kind of failure: the same for 'order 41 failed' and 'order 42 failed'."""
    text = error_first_line
    for pattern, replacement in _VARYING:
        text = pattern.sub(replacement, text)
    key = f"{dag_id}\n{task_id}\n{error_type or ''}\n{' '.join(text.split())[:300]}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class IssuePlan:
    marker: str
    title: str
    body: str
    labels: tuple[str, ...]
    assignee: str
    #: Posted on the existing issue when the signature is seen again.
    comment: str = ""


def plan_issue(failure: Any, kind: str, environment: str, settings: Mapping[str, Any]) -> IssuePlan | None:
    """The issue one final task failure should have, or None (test DAG, or an environment that files none)."""
    config = dict(settings.get("failure_issues") or {})
    if kind == "test" or environment not in (config.get("environments") or ["preprod"]):
        return None
    signature = error_signature(failure.dag_id, failure.task_id, failure.error_type, failure.error_first_line)
    if kind == "infrastructure":
        assignee = str(config.get("infrastructure_handle") or "")
        who = "infrastructure owner"
    else:
        assignee = str((config.get("owner_handles") or {}).get(failure.owner) or "")
        who = f"DAG owner {failure.owner}"
    marker = f"<!-- toilless-failure:{signature} -->"
    epic = int(config.get("epic_issue") or 0)
    title = f"[{environment}] {failure.dag_id}.{failure.task_id} failed: {failure.error_type or 'no exception'}"
    body = "\n".join(
        line
        for line in (
            marker,
            f"Part of #{epic}" if epic else "",
            f"**{md(kind, 20)} failure** in `{md(failure.dag_id, 250)}` task `{md(failure.task_id, 250)}` "
            f"({md(environment, 40)}), first seen in run `{md(failure.run_id, 250)}`.",
            f"- **Error:** {md(failure.error_type or 'none', 200)}: {md(failure.error_first_line, 300)}",
            f"- **Signature:** `{signature}` (DAG + task + error with numbers and ids left out)",
            f"- **For:** {md(who, 200)}"
            + (f", assigned to @{assignee}" if _handle_ok(assignee) else " (no GitHub handle configured)"),
            f"- **Log:** {md(failure.log_url, 500)}",
        )
        if line
    )
    comment = "\n".join(
        (
            f"Seen again in run `{md(failure.run_id, 250)}` ({md(environment, 40)}), "
            f"try {failure.try_number} of {failure.max_tries}.",
            f"- **Error:** {md(failure.error_type or 'none', 200)}: {md(failure.error_first_line, 300)}",
            f"- **Log:** {md(failure.log_url, 500)}",
        )
    )
    return IssuePlan(
        marker,
        title[:250],
        body,
        (str(config.get("label") or "airflow-failure"),),
        assignee if _handle_ok(assignee) else "",
        comment,
    )


def _handle_ok(handle: str) -> bool:
    """GitHub user names: letters, digits and single hyphens, at most 39 characters."""
    return bool(re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}", handle or ""))


def file_issue(plan: IssuePlan, settings: Mapping[str, Any]) -> dict[str, Any]:
    """File the issue unless one with its marker exists (open or closed): never twice per signature. A repeat
    comments on the existing issue instead, so its owner sees how often and where it happens."""
    from toilless.common.cost_contracts import check_github_issue
    from toilless.hooks.github_issues import GithubIssueHook

    config = dict(settings.get("failure_issues") or {})
    repo_name = str(config["repo"])
    hook = GithubIssueHook(github_conn_id=str(config.get("github_conn_id") or "github_incidents"))
    found = hook.existing_issues(repo_name, plan.labels[0], [plan.marker]).get(plan.marker)
    if found is not None:
        result: dict[str, Any] = {"filed": False, "url": found["url"]}
        if plan.comment:
            result["comment_url"] = hook.add_comment(repo_name, int(found["number"]), plan.comment)
        return result
    check_github_issue(repo_name, title=plan.title, body=plan.body, labels=list(plan.labels))
    repo = hook.get_conn().get_repo(repo_name, lazy=True)
    extra = {"assignees": [plan.assignee]} if plan.assignee else {}
    issue = repo.create_issue(title=plan.title, body=plan.body, labels=list(plan.labels), **extra)
    epic = int(config.get("epic_issue") or 0)
    if epic:
        try:
            repo.get_issue(epic).add_sub_issue(issue.id)
        except Exception as err:  # the body says "Part of #N"
            log.warning("Could not add failure issue #%s under epic #%s: %s", issue.number, epic, err)
    return {"filed": True, "url": issue.html_url}


def after_failure(context: Mapping[str, Any], failure: Any, kind: str, environment: str) -> dict[str, Any] | None:
    """The failure notifier's call: note the failure on the incident timeline, file the issue. Never raises."""
    from toilless.incidents import events as ev
    from toilless.incidents.recorder import record_from_context

    record_from_context(
        ev.RUNBOOK_FINISHED,
        context,
        summary=f"failed at task {failure.task_id}: {failure.error_type or 'no exception'}",
        data={"state": "failed", "error": failure.error_first_line},
    )
    try:
        from toilless.incidents.settings import load_settings

        settings = load_settings()
        plan = plan_issue(failure, kind, environment, settings)
        if plan is None:
            return None
        result = file_issue(plan, settings)
        log.info("Failure issue for %s.%s: %s", failure.dag_id, failure.task_id, result)
        return result
    except Exception:
        log.exception("Could not file the failure issue for %s.%s", failure.dag_id, failure.task_id)
        return None
