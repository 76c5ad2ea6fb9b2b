"""redis_memory's settings: the configuration checked value by value, with a run's Params applied (tighten only).

Pure: the configuration comes in as plain dicts (``steps`` loads it). Every refusal is a
:class:`RedisMemorySettingsError` (an ``InvalidInput``): the run fails at once, before anything is read or changed.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from toilless.common.config import AT_LEAST, AT_MOST, OFF_ONLY, LooseningParamError, ParamRule, number_setting, tighten
from toilless.common.errors import InvalidInput

DAG_ID = "redis_memory"
ACTIONS = ("expire", "unlink")
WHEN = ("pressure", "always")
#: Glob characters: a prefix is literal text, never a pattern (``cache:*`` would be a different, wider promise).
GLOB_CHARACTERS = frozenset("*?[]\\")
MAX_PREFIX_LENGTH = 200
MAX_PREFIXES = 50

#: Cleanup Params over ``cleanup`` settings: they may only tighten them.
CLEANUP_RULES = (
    ParamRule("idle_seconds", "idle_seconds", AT_LEAST, "how long a key must be idle before it is cleaned up"),
    ParamRule("max_keys_per_run", "max_keys_per_run", AT_MOST, "keys cleaned up per run"),
    ParamRule("allow_cleanup", "allow", OFF_ONLY, "the cleanup of idle keys without TTL"),
)

#: (section, key, minimum): numbers that must be positive (a 0 would mean "every key" or "no bound").
POSITIVE_NUMBERS = (
    (None, "eviction_sample_seconds", 0.1),
    ("thresholds", "used_memory_warning_pct", 1),
    ("thresholds", "used_memory_critical_pct", 1),
    ("thresholds", "fragmentation_ratio_warning", 1),
    ("thresholds", "fragmentation_min_used_bytes", 0),
    ("thresholds", "evictions_per_second_warning", 0.001),
    ("sampling", "scan_count", 1),
    ("sampling", "max_keys", 1),
    ("sampling", "max_seconds", 0.1),
    ("sampling", "top_keys", 1),
    ("sampling", "top_prefixes", 1),
    ("sampling", "max_prefixes_tracked", 1),
    ("sampling", "prefix_depth", 1),
    ("cleanup", "idle_seconds", 1),
    ("cleanup", "ttl_seconds", 1),
    ("cleanup", "batch_size", 1),
    ("cleanup", "max_keys_per_run", 1),
    ("cleanup", "scan_max_keys", 1),
    ("cleanup", "scan_max_seconds", 0.1),
)
INTEGERS = {"scan_count", "max_keys", "top_keys", "top_prefixes", "max_prefixes_tracked", "prefix_depth"} | {
    "idle_seconds",
    "ttl_seconds",
    "batch_size",
    "max_keys_per_run",
    "scan_max_keys",
}


class RedisMemorySettingsError(InvalidInput):
    """A redis_memory setting or Param is invalid; the message says which and why."""


def validate_prefix(prefix: Any) -> str:
    """A configured key prefix: literal, non-empty text; ``*``, empty and patterns are refused."""
    if not isinstance(prefix, str):
        raise RedisMemorySettingsError(f"cleanup prefix {prefix!r} must be text")
    if prefix.strip() == "" or prefix.strip() == "*":
        raise RedisMemorySettingsError(
            f"cleanup prefix {prefix!r} would match every key: name the key families to clean up, e.g. 'session:'"
        )
    if GLOB_CHARACTERS & set(prefix):
        raise RedisMemorySettingsError(
            f"cleanup prefix {prefix!r} holds a glob character (* ? [ ] \\): prefixes are literal text, "
            "write 'cache:' for every key starting with 'cache:'"
        )
    if len(prefix) > MAX_PREFIX_LENGTH or not prefix.isprintable():
        raise RedisMemorySettingsError(
            f"cleanup prefix {prefix[:40]!r} must be printable text of at most {MAX_PREFIX_LENGTH} characters"
        )
    return prefix


def validate_prefixes(prefixes: Any, *, what: str = "cleanup.prefixes") -> list[str]:
    if prefixes is None:
        return []
    if not isinstance(prefixes, list) or len(prefixes) > MAX_PREFIXES:
        raise RedisMemorySettingsError(f"{what} must be a list of at most {MAX_PREFIXES} prefixes, got {prefixes!r}")
    return [validate_prefix(prefix) for prefix in prefixes]


def _number(settings: dict[str, Any], section: str | None, key: str, minimum: float) -> None:
    holder = settings if section is None else settings.get(section)
    where = f"setting {key if section is None else f'{section}.{key}'}"
    if not isinstance(holder, dict) or key not in holder:
        raise RedisMemorySettingsError(f"{where} is missing")
    number_setting(holder[key], where, minimum=minimum, whole=key in INTEGERS, error=RedisMemorySettingsError)


def validate(settings: dict[str, Any]) -> dict[str, Any]:
    """Check every value the SOP uses; returns ``settings`` (the cleanup prefixes checked)."""
    conn_id = settings.get("redis_conn_id")
    if not isinstance(conn_id, str) or not conn_id.strip():
        raise RedisMemorySettingsError("setting redis_conn_id must name an Airflow Connection of type redis")
    for section, key, minimum in POSITIVE_NUMBERS:
        _number(settings, section, key, minimum)
    thresholds = settings["thresholds"]
    if thresholds["used_memory_warning_pct"] > thresholds["used_memory_critical_pct"]:
        raise RedisMemorySettingsError("thresholds.used_memory_warning_pct must not exceed used_memory_critical_pct")
    if thresholds["used_memory_critical_pct"] > 100:
        raise RedisMemorySettingsError("thresholds.used_memory_critical_pct must be at most 100")
    separator = settings["sampling"].get("prefix_separator")
    if not isinstance(separator, str) or not separator or len(separator) > 8:
        raise RedisMemorySettingsError(f"sampling.prefix_separator must be 1 to 8 characters, got {separator!r}")
    cleanup = settings["cleanup"]
    if cleanup.get("action") not in ACTIONS:
        raise RedisMemorySettingsError(f"cleanup.action must be one of {ACTIONS}, got {cleanup.get('action')!r}")
    if cleanup.get("when") not in WHEN:
        raise RedisMemorySettingsError(f"cleanup.when must be one of {WHEN}, got {cleanup.get('when')!r}")
    if not isinstance(cleanup.get("allow"), bool):
        raise RedisMemorySettingsError("cleanup.allow must be true or false")
    if not isinstance(settings.get("dry_run"), bool):
        raise RedisMemorySettingsError("dry_run must be true or false")
    cleanup["prefixes"] = validate_prefixes(cleanup.get("prefixes"))
    return settings


def resolve(configured: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The run's settings: the configuration checked, then the run's Params applied where they tighten it."""
    settings = validate(copy.deepcopy(dict(configured)))
    cleanup, notes = tighten(settings["cleanup"], params, CLEANUP_RULES, config_name=DAG_ID)
    chosen = params.get("prefixes")
    if chosen:
        chosen = validate_prefixes(chosen, what="Param prefixes")
        outside = [prefix for prefix in chosen if prefix not in cleanup["prefixes"]]
        if outside:
            raise LooseningParamError(
                f"Param prefixes {outside!r} are not among the configured cleanup prefixes "
                f"{cleanup['prefixes']!r}: a run may only narrow them (change cleanup.prefixes in "
                f"include/config/{DAG_ID}.yaml or the Variable toilless_{DAG_ID})"
            )
        notes.append(f"Param prefixes = {chosen} (configured {cleanup['prefixes']})")
        cleanup["prefixes"] = chosen
    settings["cleanup"] = cleanup
    # Dry run by configuration cannot be switched off by a run; a run can always ask for one.
    settings["dry_run"] = bool(settings["dry_run"]) or bool(params.get("dry_run"))
    settings["dry_run_by_config"] = bool(configured.get("dry_run"))
    settings["notes"] = notes
    return validate(settings)
