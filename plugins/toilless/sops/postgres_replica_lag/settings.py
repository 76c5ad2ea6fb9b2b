"""postgres_replica_lag's policy: configuration tightened by the run's Params, validated. Pure, no Airflow."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from toilless.common.config import AT_LEAST, AT_MOST, OFF_ONLY, ParamRule, number_setting, tighten
from toilless.common.errors import InvalidInput

DAG_ID = "postgres_replica_lag"
PARAM_RULES = (
    ParamRule("resume_paused_replay", "resume_paused_replay", OFF_ONLY, "resuming a paused replay"),
    ParamRule("cancel_blocking_queries", "cancel_blocking_queries", OFF_ONLY, "cancelling a query that holds replay"),
    ParamRule(
        "action_min_lag_seconds", "action_min_lag_seconds", AT_LEAST, "the lag that must be reached before acting"
    ),
    ParamRule("max_cancels", "max_cancels_per_run", AT_MOST, "queries cancelled per run"),
    ParamRule("warning_seconds", "warning_seconds", AT_LEAST, "the warning threshold (report only)"),
    ParamRule("critical_seconds", "critical_seconds", AT_LEAST, "the critical threshold (report only)"),
)
_CONN_ID = re.compile(r"[A-Za-z0-9_.\-]{1,250}")
_POSITIVE = (
    "warning_seconds",
    "critical_seconds",
    "action_min_lag_seconds",
    "min_blocking_query_seconds",
    "receiver_silence_seconds",
)
DISK_METHODS = ("none", "path", "command")


class SettingsError(InvalidInput):
    """A setting or Param of postgres_replica_lag is invalid; the message names it."""


def resolve(config: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    settings, notes = tighten(config, params, PARAM_RULES, config_name=DAG_ID)
    settings["dry_run"] = bool(params.get("dry_run"))
    settings["notes"] = notes
    return validate(settings)


def validate(settings: dict[str, Any]) -> dict[str, Any]:
    settings["primary_conn_id"] = _conn_id(settings.get("primary_conn_id"), "primary_conn_id")
    for key in _POSITIVE:
        settings[key] = _positive(settings.get(key), key)
    if settings["warning_seconds"] > settings["critical_seconds"]:
        raise SettingsError("warning_seconds must not be above critical_seconds")
    settings["max_cancels_per_run"] = _count(settings.get("max_cancels_per_run"), "max_cancels_per_run")
    settings["disk_min_free_pct"] = _positive(settings.get("disk_min_free_pct", 10), "disk_min_free_pct")
    for key in ("resume_paused_replay", "cancel_blocking_queries"):
        if not isinstance(settings.get(key), bool):
            raise SettingsError(f"{key} must be true or false, got {settings.get(key)!r}")
    replicas = settings.get("replicas")
    if not isinstance(replicas, list) or not replicas:
        raise SettingsError("replicas must list at least one replica: {name, conn_id, application_name, disk}")
    names = set()
    checked = []
    for index, replica in enumerate(replicas):
        if not isinstance(replica, dict):
            raise SettingsError(f"replicas[{index}] must be a mapping, got {replica!r}")
        conn_id = _conn_id(replica.get("conn_id"), f"replicas[{index}].conn_id")
        if conn_id == settings["primary_conn_id"]:
            raise SettingsError(f"replicas[{index}].conn_id is the primary's Connection")
        name = str(replica.get("name") or conn_id)
        if name in names:
            raise SettingsError(f"replica name {name!r} appears twice")
        names.add(name)
        disk = dict(replica.get("disk") or {"method": "none"})
        if disk.get("method", "none") not in DISK_METHODS:
            raise SettingsError(
                f"replicas[{index}].disk.method must be one of {DISK_METHODS}, got {disk.get('method')!r}"
            )
        if disk.get("method") == "path" and not (isinstance(disk.get("path"), str) and disk["path"].startswith("/")):
            raise SettingsError(f"replicas[{index}].disk.path must be an absolute path")
        if disk.get("method") == "command":
            argv = disk.get("argv")
            if not isinstance(argv, list) or not argv or not all(isinstance(part, str) and part for part in argv):
                raise SettingsError(f"replicas[{index}].disk.argv must be a non-empty list of strings (no shell)")
        application_name = replica.get("application_name")
        if application_name is not None and not isinstance(application_name, str):
            raise SettingsError(f"replicas[{index}].application_name must be a string")
        checked.append({"name": name, "conn_id": conn_id, "application_name": application_name, "disk": disk})
    settings["replicas"] = checked
    settings["query_chars"] = int(_count(settings.get("query_chars", 200), "query_chars"))
    return settings


def _conn_id(value: Any, key: str) -> str:
    if not isinstance(value, str) or not _CONN_ID.fullmatch(value):
        raise SettingsError(f"{key} must be an Airflow Connection id, got {value!r}")
    return value


def _positive(value: Any, key: str) -> float:
    return number_setting(value, key, above=0, error=SettingsError)


def _count(value: Any, key: str) -> int:
    return int(number_setting(value, key, minimum=1, whole=True, error=SettingsError))
