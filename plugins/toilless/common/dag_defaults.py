"""Shared DAG defaults: every SOP DAG builds its default_args and its tasks here.

- :func:`default_args`: owner, retries and the shared Slack failure notifier on every task.
- :data:`task`: Airflow's ``@task`` (and ``@task.branch``, ...) with one addition: invalid input
  (:class:`toilless.common.errors.InvalidInput`, e.g. a negative threshold in a Variable) fails the task at once with
  a clear message instead of being retried, and so does a permanent AWS or Kubernetes error
  (:func:`toilless.common.errors.is_permanent`: validation, access denied, not found, quota). This is the one place
  that decision is made for every SOP.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from airflow.sdk import task as airflow_task

from toilless.common.errors import InvalidInput, describe_permanent, is_permanent
from toilless.common.redaction import mask_secrets
from toilless.notifiers.slack_failure import SlackFailureNotifier

#: Marks a callable wrapped by :func:`fail_fast` (the DAG house rules check every Python task carries it).
FAIL_FAST_MARK = "__toilless_fail_fast__"


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


def fail_fast(python_callable: Callable[..., Any]) -> Callable[..., Any]:
    """``python_callable`` whose :class:`InvalidInput` becomes ``AirflowFailException``: failed, never retried.

    Retries are for what may pass next time (a network blip, a lock); a bad setting fails the same way on every
    try, and retrying only delays the message by minutes.
    """
    if getattr(python_callable, FAIL_FAST_MARK, False):
        return python_callable

    @functools.wraps(python_callable)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return python_callable(*args, **kwargs)
        except InvalidInput as err:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(
                f"invalid configuration or Params (not retried, fix the input and run again): {mask_secrets(str(err))}"
            ) from err
        except Exception as err:
            # A permanent AWS/Kubernetes answer (validation, access denied, not found, quota) fails the same way on
            # every try: fail now with the API's own reason. Throttling, 5xx and network errors go to the retries.
            # Airflow's own exceptions (skip, defer, fail) keep their meaning.
            if type(err).__module__.startswith("airflow") or not is_permanent(err):
                raise
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(
                f"permanent error from {describe_permanent(err)} (not retried, a retry cannot fix it): "
                f"{mask_secrets(str(err))}"
            ) from err

    setattr(run, FAIL_FAST_MARK, True)
    return run


class _FailFastTask:
    """Drop-in for ``airflow.sdk.task``: ``@task``, ``@task(...)``, ``@task.branch``, ... with :func:`fail_fast`."""

    def __call__(self, python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        return _decorate(airflow_task, python_callable, kwargs)

    def __getattr__(self, flavour: str) -> Callable[..., Any]:
        decorator = getattr(airflow_task, flavour)

        def flavoured(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
            return _decorate(decorator, python_callable, kwargs)

        return flavoured


def _decorate(decorator: Callable[..., Any], python_callable: Callable[..., Any] | None, kwargs: dict[str, Any]) -> Any:
    if python_callable is None:
        return lambda function: decorator(**kwargs)(fail_fast(function))
    return decorator(fail_fast(python_callable), **kwargs)


#: Use instead of ``airflow.sdk.task`` in every DAG: ``from toilless.common.dag_defaults import default_args, task``.
task = _FailFastTask()
