"""The SOP's policy: configuration (YAML + Variable) tightened by the run's Params, validated. Pure, no Airflow.

Bad input fails at once with a clear message (:class:`SettingsError`, an InvalidInput: never retried) before
anything is read or changed: thresholds must be above zero, the cap N at least 1, the allow-list exact names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from toilless.common.config import AT_LEAST, AT_MOST, OFF_ONLY, ParamRule, number_setting, tighten
from toilless.common.errors import InvalidInput

DAG_ID = "postgres_connections"

#: How each Param relates to the configuration: it may only tighten it (toilless.common.config).
PARAM_RULES = (
    ParamRule("end_sessions", "end_sessions", OFF_ONLY, "ending sessions at all"),
    ParamRule("end_idle", "end_idle", OFF_ONLY, "ending idle (not in a transaction) sessions"),
    ParamRule(
        "idle_in_transaction_seconds",
        "idle_in_transaction_seconds",
        AT_LEAST,
        "how long a transaction must sit idle before it may be ended",
    ),
    ParamRule("idle_seconds", "idle_seconds", AT_LEAST, "how long a session must sit idle before it may be ended"),
    ParamRule("max_terminations", "max_terminations_per_run", AT_MOST, "sessions ended per run"),
    ParamRule("long_query_seconds", "long_query_seconds", AT_LEAST, "what counts as a long query (report only)"),
)

#: application_name is at most 63 bytes (NAMEDATALEN - 1); an allow-list entry is one exact name.
_APPLICATION = re.compile(r"[^\s*?%]{1,63}")
_CONN_ID = re.compile(r"[A-Za-z0-9_.\-]{1,250}")
_POSITIVE = ("long_query_seconds", "idle_in_transaction_seconds", "idle_seconds")


class SettingsError(InvalidInput):
    """A setting or Param of postgres_connections is invalid; the message names it."""


def resolve(config: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """This run's settings: ``config`` with the Params applied where they tighten it, validated."""
    settings, notes = tighten(config, params, PARAM_RULES, config_name=DAG_ID)
    settings["dry_run"] = bool(params.get("dry_run"))
    settings["notes"] = notes
    return validate(settings)


def validate(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with numbers normalised; raise :class:`SettingsError` naming the first bad value."""
    conn_id = settings.get("postgres_conn_id")
    if not isinstance(conn_id, str) or not _CONN_ID.fullmatch(conn_id):
        raise SettingsError(f"postgres_conn_id must be an Airflow Connection id, got {conn_id!r}")
    for key in _POSITIVE:
        settings[key] = _positive_number(settings.get(key), key)
    settings["max_terminations_per_run"] = _positive_int(
        settings.get("max_terminations_per_run"), "max_terminations_per_run"
    )
    for key in ("warning_usage_pct", "critical_usage_pct"):
        value = _positive_number(settings.get(key), key)
        if value > 100:
            raise SettingsError(f"{key} must be at most 100, got {value:g}")
        settings[key] = value
    if settings["warning_usage_pct"] > settings["critical_usage_pct"]:
        raise SettingsError("warning_usage_pct must not be above critical_usage_pct")
    for key in ("end_sessions", "end_idle"):
        if not isinstance(settings.get(key), bool):
            raise SettingsError(f"{key} must be true or false, got {settings.get(key)!r}")
    settings["allowed_applications"] = _allow_list(settings.get("allowed_applications"))
    settings["pools"] = _pools(settings.get("pools"))
    settings["query_chars"] = _positive_int(settings.get("query_chars", 200), "query_chars")
    settings["max_listed"] = _positive_int(settings.get("max_listed", 15), "max_listed")
    settings["max_rows"] = _positive_int(settings.get("max_rows", 1000), "max_rows")
    if not isinstance(settings.get("report_channel"), str) or not settings["report_channel"]:
        raise SettingsError("report_channel must name a Slack channel from include/config/toilless.yaml")
    return settings


def _positive_number(value: Any, key: str) -> float:
    why = ": a threshold of 0 would match every session"
    return number_setting(value, key, above=0, why=why, error=SettingsError)


def _positive_int(value: Any, key: str) -> int:
    return int(number_setting(value, key, minimum=1, whole=True, error=SettingsError))


def _allow_list(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SettingsError(f"allowed_applications must be a list of application names, got {value!r}")
    for name in value:
        if not isinstance(name, str) or not _APPLICATION.fullmatch(name):
            raise SettingsError(
                f"allowed_applications: {name!r} is not one exact application_name (1-63 characters, no spaces "
                "and no wildcards: * ? % match nothing here)"
            )
        if name.lower().startswith("toilless"):
            raise SettingsError(f"allowed_applications: {name!r} is Toilless's own name; its sessions are never ended")
    return sorted(set(value))


def _pools(value: Any) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SettingsError(f"pools must map application_name to its pool size, got {value!r}")
    return {str(name): _positive_int(size, f"pools.{name}") for name, size in value.items()}
