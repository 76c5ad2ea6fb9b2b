"""Params every SOP DAG shares, so the UI form and the alert intake speak the same language.

``alert``: the Alertmanager alert that started the run (set by the alert intake; empty for scheduled/manual runs).
``dry_run``: report what would be done, change nothing. The alert intake forces it on inside a maintenance window.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param

#: The alert fields the intake puts into a run's conf under ``alert``.
ALERT_FIELDS = (
    "alertname",
    "status",
    "labels",
    "annotations",
    "startsAt",
    "fingerprint",
    "generatorURL",
    "externalURL",
)


def optional_param(kind: str, title: str, description: str, *, default: Any = None, **schema: Any) -> Param:
    """A Param the trigger form may leave empty: JSON-schema type ``["null", kind]``, ``default`` (None) when unset.

    "null" in the type: Airflow's trigger form marks a field required (red *) unless its type allows null, and sends
    null for a cleared field; the steps read None as "the configured value". ``schema`` adds JSON-schema keywords
    (minimum, pattern, items, enum, ...).
    """
    return Param(default, type=["null", kind], title=title, description=description, **schema)


def dry_run_param(default: bool = False) -> Param:
    # A run without the key gets the default; code reads it as bool(params.get("dry_run")), so None is False.
    return optional_param("boolean", "Dry run", "Show exactly what would be done and change nothing.", default=default)


def alert_param() -> Param:
    return optional_param(
        "object",
        "Triggering alert",
        "Set by the alert intake when an Alertmanager alert started this run: alertname, status, labels, "
        "annotations, startsAt, fingerprint, generatorURL, externalURL. Leave empty for a manual run.",
    )


def alert_from_params(params: dict[str, Any]) -> dict[str, Any] | None:
    """The triggering alert of a run, or None for scheduled and manual runs."""
    alert = params.get("alert")
    return alert if isinstance(alert, dict) and alert else None
