"""Shared DAG defaults: every SOP DAG builds its default_args here so every task carries the failure notifier."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from toilless.notifiers.slack import SlackFailureNotifier


def default_args(
    *,
    owner: str,
    retries: int = 2,
    retry_delay: timedelta = timedelta(minutes=1),
    **overrides: Any,
) -> dict[str, Any]:
    """default_args for a SOP DAG: owner, retries and the shared Slack failure notifier on every task.

    The notifier is task-level on purpose: DAG-level notifier callbacks break under ``dag.test()``
    (apache/airflow#64649) and a task-level one names the failed task.
    """
    if not owner or owner == "airflow":
        raise ValueError("every SOP DAG names its owning team (not the default 'airflow')")
    args: dict[str, Any] = {
        "owner": owner,
        "retries": retries,
        "retry_delay": retry_delay,
        "retry_exponential_backoff": False,
        "on_failure_callback": [SlackFailureNotifier()],
    }
    args.update(overrides)
    return args
