"""The Airflow-alerts SOP as pure logic: classify a task failure, pick its channel, write its message.

No Airflow import: the notifier (toilless.notifiers.slack) turns an Airflow context into a :class:`TaskFailure` and calls
these functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TEST = "test"
INFRASTRUCTURE = "infrastructure"
CODE = "code"


@dataclass(frozen=True)
class TaskFailure:
    """What an on-call needs to know about one failed task instance."""

    dag_id: str
    task_id: str
    run_id: str
    try_number: int
    max_tries: int
    owner: str
    error_type: str | None
    error_first_line: str
    log_url: str
    map_index: int = -1


@dataclass(frozen=True)
class FailureRoute:
    kind: str  # TEST | INFRASTRUCTURE | CODE
    channel: str
    action: str  # what the reader is asked to do


def first_line(error: BaseException | str | None, limit: int = 300) -> str:
    """The first non-empty line of an error, shortened; a failure without an exception says so."""
    if error is None:
        return "no exception recorded (the task was failed by the executor or externally)"
    text = str(error).strip() or type(error).__name__
    line = next((part.strip() for part in text.splitlines() if part.strip()), text)
    return line if len(line) <= limit else line[: limit - 1] + "…"


def classify_failure(failure: TaskFailure, settings: dict[str, Any]) -> str:
    """``test`` for test DAGs, ``infrastructure`` for pod/executor/worker failures, else ``code``."""
    prefixes = settings.get("test_dag_prefixes", ["test."])
    if any(failure.dag_id.startswith(prefix) for prefix in prefixes):
        return TEST
    if failure.error_type is None:
        # No exception reached the task: the executor, a killed pod or a lost worker failed it.
        return INFRASTRUCTURE
    haystack = f"{failure.error_type} {failure.error_first_line}".lower()
    patterns = settings.get("infrastructure_error_patterns", [])
    if any(str(pattern).lower() in haystack for pattern in patterns):
        return INFRASTRUCTURE
    return CODE


def route_failure(failure: TaskFailure, settings: dict[str, Any], environment: str) -> FailureRoute:
    """Where a failure goes and what the reader should do, per the Airflow-alerts SOP."""
    kind = classify_failure(failure, settings)
    if kind == TEST:
        return FailureRoute(TEST, "non_urgent", "No action needed: this is a test DAG.")
    if kind == INFRASTRUCTURE:
        channel = settings.get("infrastructure_channel", "infrastructure")
        return FailureRoute(
            INFRASTRUCTURE, channel, "Infrastructure owner: check the worker, pod or executor that ran it."
        )
    owner_channels = settings.get("owner_channels") or {}
    default_channel = "urgent" if environment == "prod" else "non_urgent"
    channel = owner_channels.get(failure.owner, default_channel)
    return FailureRoute(
        CODE,
        channel,
        f"DAG owner `{failure.owner}`: read the log, fix the task or its input, and file an issue in the team tracker.",
    )


def failure_message(failure: TaskFailure, route: FailureRoute, environment: str) -> dict[str, Any]:
    """Slack message (``text`` fallback plus Block Kit ``blocks``) for one final task failure."""
    label = {TEST: "Test DAG failed", INFRASTRUCTURE: "Infrastructure failure", CODE: "Task failed"}[route.kind]
    mapped = f" (map index {failure.map_index})" if failure.map_index >= 0 else ""
    summary = (
        f"{label} [{environment}]: {failure.dag_id}.{failure.task_id}{mapped} "
        f"run {failure.run_id} try {failure.try_number}/{failure.max_tries}: {failure.error_first_line}"
    )
    fields = [
        f"*DAG:* `{failure.dag_id}`",
        f"*Task:* `{failure.task_id}`{mapped}",
        f"*Run:* `{failure.run_id}`",
        f"*Try:* {failure.try_number} of {failure.max_tries}",
        f"*Owner:* {failure.owner}",
        f"*Kind:* {route.kind}",
    ]
    error = f"{failure.error_type}: {failure.error_first_line}" if failure.error_type else failure.error_first_line
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{label} [{environment}]"[:150]}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": field} for field in fields]},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Error:* ```{error[:2800]}```"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Action:* {route.action}"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"<{failure.log_url}|Open the task log>"}},
    ]
    return {"text": f"{summary}\nLog: {failure.log_url}", "blocks": blocks}
