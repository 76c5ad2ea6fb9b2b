"""The shared failure notifier: one Slack message per final task failure, routed per the Airflow-alerts SOP."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from toilless.common.alerting import TaskFailure, failure_message, first_line, route_failure
from toilless.incidents import failure_triage

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)


class SlackFailureNotifier(BaseNotifier):
    """Posts a task's final failure to Slack through the Slack provider's webhook hook.

    Attach it as ``on_failure_callback`` (task level, through :func:`toilless.common.dag_defaults.default_args`): Airflow calls
    it once when a task has no tries left, not on each retry, so there is one message per failure.
    """

    template_fields = ()

    def notify(self, context: Context) -> None:
        from toilless.common.config import load_config
        from toilless.common.reporting import airflow_base_url, post_message
        from toilless.common.slack import allowed_link_hosts

        settings = load_config("toilless")
        base_url = airflow_base_url(settings)
        failure = failure_from_context(context, base_url)
        environment = settings.get("environment", "sandbox")
        route = route_failure(failure, settings.get("failure_alerts", {}), environment)
        message = failure_message(failure, route, environment, allowed_link_hosts(settings, base_url))
        post_message(route.channel, message["text"], blocks=message["blocks"], settings=settings)
        failure_triage.after_failure(context, failure, route.kind, environment)  # issue + timeline; never raises


def failure_from_context(context: Any, base_url: str) -> TaskFailure:
    """Read what the message needs from an Airflow task context."""
    ti = context["ti"]
    task = context.get("task")
    error = context.get("exception")
    log_url = ti.log_url
    # ti.log_url uses [api] base_url; the configured UI base URL wins so links work behind a proxy.
    if base_url and "/dags/" in log_url:
        log_url = f"{base_url.rstrip('/')}/dags/{log_url.split('/dags/', 1)[1]}"
    map_index = getattr(ti, "map_index", None)
    max_tries = getattr(ti, "max_tries", None)
    if max_tries is None and task is not None:
        max_tries = task.retries
    return TaskFailure(
        dag_id=ti.dag_id,
        task_id=ti.task_id,
        run_id=ti.run_id,
        try_number=int(ti.try_number or 1),
        # max_tries counts retries; the total number of tries is one more.
        max_tries=int(max_tries or 0) + 1,
        owner=getattr(task, "owner", "airflow"),
        error_type=type(error).__name__ if isinstance(error, BaseException) else None,
        error_first_line=first_line(error),
        log_url=log_url,
        map_index=-1 if map_index is None else int(map_index),
    )
