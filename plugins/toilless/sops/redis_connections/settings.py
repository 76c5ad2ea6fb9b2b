"""redis_connections' settings: the configuration checked value by value, with a run's Params applied (tighten only).

Pure. Every refusal is a :class:`RedisConnectionsSettingsError` (an ``InvalidInput``): the run fails at once, before
anything is read or changed.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from toilless.common.config import AT_LEAST, AT_MOST, OFF_ONLY, LooseningParamError, ParamRule, number_setting, tighten
from toilless.common.errors import InvalidInput

DAG_ID = "redis_connections"
#: What CLIENT SETNAME accepts: no spaces, newlines or special characters (Redis refuses them), plus a length bound.
CLIENT_NAME = re.compile(r"^[!-~]{1,128}\Z")
#: Toilless's own connections (every Redis SOP names its connection ``toilless-<dag_id>``).
OWN_NAME_PREFIX = "toilless"
MAX_NAMES = 100

KILL_RULES = (
    ParamRule("idle_seconds", "idle_seconds", AT_LEAST, "how long a connection must be idle before it is ended"),
    ParamRule("max_clients_per_run", "max_clients_per_run", AT_MOST, "connections ended per run"),
    ParamRule("allow_kill", "allow", OFF_ONLY, "ending idle connections"),
)
POSITIVE_NUMBERS = (
    (None, "sample_seconds", 0.1),
    (None, "client_list_max", 1),
    (None, "top_groups", 1),
    ("thresholds", "connected_warning_pct", 1),
    ("thresholds", "connected_critical_pct", 1),
    ("thresholds", "blocked_clients_warning", 1),
    ("kill", "idle_seconds", 1),
    ("kill", "max_clients_per_run", 1),
)
INTEGERS = {"client_list_max", "top_groups", "blocked_clients_warning", "idle_seconds", "max_clients_per_run"}


class RedisConnectionsSettingsError(InvalidInput):
    """A redis_connections setting or Param is invalid; the message says which and why."""


def validate_client_name(name: Any) -> str:
    """A client name to end idle connections of: exact, non-empty, as CLIENT SETNAME allows, never Toilless's own."""
    if not isinstance(name, str) or name.strip() in ("", "*"):
        raise RedisConnectionsSettingsError(
            f"client name {name!r} would choose unnamed or every client: list exact client names (CLIENT SETNAME)"
        )
    if not CLIENT_NAME.match(name) or any(char in name for char in "*?["):
        raise RedisConnectionsSettingsError(
            f"client name {name[:40]!r} is not an exact client name (1-128 printable characters, no spaces, no "
            "glob characters)"
        )
    if name.lower().startswith(OWN_NAME_PREFIX):
        raise RedisConnectionsSettingsError(f"client name {name!r}: Toilless never ends its own connections")
    return name


def validate_client_names(names: Any, *, what: str = "kill.client_names") -> list[str]:
    if names is None:
        return []
    if not isinstance(names, list) or len(names) > MAX_NAMES:
        raise RedisConnectionsSettingsError(f"{what} must be a list of at most {MAX_NAMES} names, got {names!r}")
    return [validate_client_name(name) for name in names]


def _number(settings: dict[str, Any], section: str | None, key: str, minimum: float) -> None:
    holder = settings if section is None else settings.get(section)
    where = f"setting {key if section is None else f'{section}.{key}'}"
    if not isinstance(holder, dict) or key not in holder:
        raise RedisConnectionsSettingsError(f"{where} is missing")
    number_setting(holder[key], where, minimum=minimum, whole=key in INTEGERS, error=RedisConnectionsSettingsError)


def validate(settings: dict[str, Any]) -> dict[str, Any]:
    conn_id = settings.get("redis_conn_id")
    if not isinstance(conn_id, str) or not conn_id.strip():
        raise RedisConnectionsSettingsError("setting redis_conn_id must name an Airflow Connection of type redis")
    for section, key, minimum in POSITIVE_NUMBERS:
        _number(settings, section, key, minimum)
    thresholds = settings["thresholds"]
    if not thresholds["connected_warning_pct"] <= thresholds["connected_critical_pct"] <= 100:
        raise RedisConnectionsSettingsError(
            "thresholds: connected_warning_pct <= connected_critical_pct <= 100 must hold"
        )
    kill = settings["kill"]
    if kill.get("when") not in ("pressure", "always"):
        raise RedisConnectionsSettingsError(f"kill.when must be pressure or always, got {kill.get('when')!r}")
    if not isinstance(kill.get("allow"), bool):
        raise RedisConnectionsSettingsError("kill.allow must be true or false")
    if not isinstance(settings.get("dry_run"), bool):
        raise RedisConnectionsSettingsError("dry_run must be true or false")
    kill["client_names"] = validate_client_names(kill.get("client_names"))
    pools = settings.get("pools") or {}
    if not isinstance(pools, dict):
        raise RedisConnectionsSettingsError("pools must map client names to pool sizes")
    for name, size in pools.items():
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise RedisConnectionsSettingsError(f"pools.{name} must be a pool size of at least 1, got {size!r}")
    settings["pools"] = pools
    return settings


def resolve(configured: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The run's settings: the configuration checked, then the run's Params applied where they tighten it."""
    settings = validate(copy.deepcopy(dict(configured)))
    kill, notes = tighten(settings["kill"], params, KILL_RULES, config_name=DAG_ID)
    chosen = params.get("client_names")
    if chosen:
        chosen = validate_client_names(chosen, what="Param client_names")
        outside = [name for name in chosen if name not in kill["client_names"]]
        if outside:
            raise LooseningParamError(
                f"Param client_names {outside!r} are not among the configured kill.client_names "
                f"{kill['client_names']!r}: a run may only narrow them (change kill.client_names in "
                f"include/config/{DAG_ID}.yaml or the Variable toilless_{DAG_ID})"
            )
        notes.append(f"Param client_names = {chosen} (configured {kill['client_names']})")
        kill["client_names"] = chosen
    settings["kill"] = kill
    settings["dry_run"] = bool(settings["dry_run"]) or bool(params.get("dry_run"))
    settings["dry_run_by_config"] = bool(configured.get("dry_run"))
    settings["notes"] = notes
    return validate(settings)
