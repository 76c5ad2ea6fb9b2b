"""The Airflow-alerts SOP as pure logic: classify a task failure, pick its channel, write its message.

No Airflow import: the notifier (toilless.notifiers.slack_failure) turns an Airflow context into a :class:`TaskFailure` and calls
these functions. Everything in a failure is outside text (error text above all, but run ids come from REST callers too):
the message is built with the common Slack builder, and the error's first line has secrets masked where it is read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from toilless.common import slack
from toilless.common.redaction import mask_secrets

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
    action: str  # what the reader is asked to do (mrkdwn, built from escaped parts)


def first_line(error: BaseException | str | None, limit: int = 300) -> str:
    """The first non-empty line of an error, secrets masked, shortened; a failure without an exception says so."""
    if error is None:
        return "no exception recorded (the task was failed by the executor or externally)"
    text = str(error).strip() or type(error).__name__
    line = next((part.strip() for part in text.splitlines() if part.strip()), text)
    # Masked before it is cut: a cut could leave half a secret that no pattern recognises.
    line = mask_secrets(line[: limit + 4096])
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
        slack.mrkdwn(
            "DAG owner {}: read the log, fix the task or its input, and file an issue in the team tracker.",
            slack.code(failure.owner, 100),
        ),
    )


def failure_message(
    failure: TaskFailure, route: FailureRoute, environment: str, link_hosts: Iterable[str] = ()
) -> dict[str, Any]:
    """Slack message (``text`` fallback plus Block Kit ``blocks``) for one final task failure.

    :param link_hosts: hosts the log link may point to (:func:`toilless.common.slack.allowed_link_hosts`); a log URL
        elsewhere is shown as text, not linked.
    """
    label = {TEST: "Test DAG failed", INFRASTRUCTURE: "Infrastructure failure", CODE: "Task failed"}[route.kind]
    mapped = f" (map index {failure.map_index})" if failure.map_index >= 0 else ""
    hosts = frozenset(link_hosts)
    log_link = slack.link(failure.log_url, "Open the task log", hosts)
    summary = slack.mrkdwn(
        "{} [{}]: {}.{}{} run {} try {}/{}: {}",
        label,
        environment,
        failure.dag_id,
        failure.task_id,
        mapped,
        failure.run_id,
        failure.try_number,
        failure.max_tries,
        failure.error_first_line,
        limit=300,
    )
    fields = [
        slack.mrkdwn("*DAG:* {}", slack.code(failure.dag_id, 250)),
        slack.mrkdwn("*Task:* {}{}", slack.code(failure.task_id, 250), mapped),
        slack.mrkdwn("*Run:* {}", slack.code(failure.run_id, 250)),
        slack.mrkdwn("*Try:* {} of {}", failure.try_number, failure.max_tries),
        slack.mrkdwn("*Owner:* {}", failure.owner, limit=100),
        slack.mrkdwn("*Kind:* {}", route.kind),
    ]
    error = f"{failure.error_type}: {failure.error_first_line}" if failure.error_type else failure.error_first_line
    blocks = [
        slack.header(f"{label} [{environment}]"),
        slack.fields_section(*fields),
        slack.section(slack.mrkdwn("*Error:* {}", slack.code_block(error, 2800))),
        slack.section(slack.mrkdwn("*Action:* {}", slack.as_mrkdwn(route.action, 1000))),
        slack.section(log_link),
    ]
    return {"text": slack.mrkdwn("{}\nLog: {}", summary, log_link), "blocks": blocks}
