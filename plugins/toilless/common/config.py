"""Install-wide settings: YAML defaults in include/config/, overridden by Airflow Variables.

Read inside tasks, never at DAG-parse time (a Variable read is a metadata-DB or API call).

The one settings merge, in two stages: :func:`load_config` (YAML defaults, then the Variable) and :func:`tighten` (a
run's Params over the result, which may only tighten a policy). The second stage is pure, so a SOP's pure modules
apply it to the part of the settings they own.
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, get_type_hints

from toilless.common.errors import InvalidInput

if TYPE_CHECKING:
    from toilless.common.policies import WeeklyWindow

#: Repository root in a checkout (plugins/toilless/common/config.py → ../../../) and /opt/airflow in the image.
PROJECT_ROOT = Path(__file__).resolve().parents[3]
INCLUDE_DIR = Path(os.environ.get("TOILLESS_INCLUDE_DIR", PROJECT_ROOT / "include"))
VARIABLE_PREFIX = "toilless_"
T = TypeVar("T")


class ConfigError(InvalidInput):
    """A setting is missing or malformed; the message says which and where (never retried: see InvalidInput)."""


def include_path(*parts: str) -> Path:
    """Path of a data file under include/."""
    return INCLUDE_DIR.joinpath(*parts)


@cache
def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    # Imported here: PyYAML costs ~0.1 s CPU to import, paid by every `python -m toilless.sops.log_rotation` run that
    # reads a JSON config (the log-rotation benchmark rotates against logrotate, process start included).
    import yaml

    with path.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping, got {type(data).__name__}")
    return data


def read_defaults(name: str) -> dict[str, Any]:
    """The YAML defaults include/config/<name>.yaml, as a fresh copy the caller may change."""
    return copy.deepcopy(_read_yaml(include_path("config", f"{name}.yaml")))


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into a copy of ``base``: mappings merge key by key, anything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def parse_override(name: str, raw: str | None) -> dict[str, Any]:
    """Parse a Variable's JSON text; a malformed override is an error, not silently ignored."""
    if raw is None or raw.strip() == "":
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ConfigError(f"Variable {VARIABLE_PREFIX}{name} is not valid JSON: {err}") from err
    if not isinstance(value, dict):
        raise ConfigError(f"Variable {VARIABLE_PREFIX}{name} must be a JSON object")
    return value


def load_config(name: str) -> dict[str, Any]:
    """Defaults from include/config/<name>.yaml merged with the JSON Variable ``toilless_<name>`` if set.

    Call this inside a task: it reads a Variable.
    """
    from airflow.sdk import Variable

    raw = Variable.get(f"{VARIABLE_PREFIX}{name}", default=None)
    return deep_merge(read_defaults(name), parse_override(name, raw))


def typed_settings(cls: type[T], config: Mapping[str, Any], *, what: str, optional: Iterable[str] = ()) -> T:
    """The dataclass ``cls`` built from ``config``: each field converted by its annotated type (``int(...)``, ...).

    A field named in ``optional`` may be missing (it keeps its default); any other missing key or a value its type
    refuses raises ValueError ``"<what> are incomplete or not numbers: ..."``. Range checks stay with the caller.
    """
    kinds = get_type_hints(cls)
    optional = frozenset(optional)
    try:
        values = {
            field.name: kinds[field.name](config[field.name])
            for field in fields(cls)  # type: ignore[arg-type]
            if field.name in config or field.name not in optional
        }
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{what} are incomplete or not numbers: {err}") from err
    return cls(**values)


def number_setting(
    value: Any,
    where: str,
    *,
    above: float | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    whole: bool = False,
    why: str = "",
    error: type[InvalidInput] = ConfigError,
) -> float:
    """The one check of a numeric setting or Param: a finite int or float (never a bool), whole where asked, in range.

    Returns it as ``int`` when ``whole``, else ``float``. Anything else raises ``error`` (an :class:`InvalidInput`, so
    the task fails at once and is not retried) naming ``where``; ``why`` is appended to a range refusal (e.g. what a
    threshold of 0 would do). ``inf``, ``nan`` and ``1e999`` are refused here, where ``int(value)`` would raise
    OverflowError or ValueError instead.
    """
    kind = "a whole number" if whole else "a number"
    bound = f" above {above:g}" if above is not None else f" of at least {minimum:g}" if minimum is not None else ""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or (whole and value != int(value))
    ):
        raise error(f"{where} must be {kind}{bound}, got {value!r}")
    if above is not None and not value > above:
        raise error(f"{where} must be above {above:g}, got {value:g}{why}")
    if minimum is not None and value < minimum:
        raise error(f"{where} must be {kind}{bound}, got {value:g}{why}")
    if maximum is not None and value > maximum:
        raise error(f"{where} must be at most {maximum:g}, got {value:g}{why}")
    return int(value) if whole else float(value)


# -- Params over configuration ---------------------------------------------------------------------------------------
# Per-run Params may tighten a configured policy, never loosen it.
#
# Configured policy (include/config/<sop>.yaml, overridden by the Variable ``toilless_<sop>``) is reviewed like code.
# A Param is typed by anyone who may trigger a run (the UI form, the REST API, the alert intake's conf), so it may
# only make an action less likely or smaller: lower caps, smaller steps, higher thresholds before acting, automatic
# action off, narrower business hours. Loosening is a configuration change.
#
# Choice: a loosening Param is **refused** with :class:`LooseningParamError` (a ``ValueError``; the DAG turns it into a
# non-retried failure before anything is read or changed). Silently ignoring it would run with a policy the person
# did not ask for and might not notice in the report; refusing says exactly which Param, the configured value, and
# how to change the configuration instead.
#
# Each acting SOP declares its rules (a table of :class:`ParamRule`) and calls :func:`tighten` once. Pure: no Airflow.


#: The Param may only be <= the configured value (caps, growth steps).
AT_MOST = "at_most"
#: The Param may only be >= the configured value (thresholds that must be reached before acting).
AT_LEAST = "at_least"
#: A boolean that permits an action: the Param may switch it off, never on.
OFF_ONLY = "off_only"
#: The Param does not permit any action (reporting thresholds): any valid value is taken.
FREE = "free"
DIRECTIONS = (AT_MOST, AT_LEAST, OFF_ONLY, FREE)


class LooseningParamError(InvalidInput):
    """A run Param would loosen a configured policy; the message says which and what to do instead."""


@dataclass(frozen=True)
class ParamRule:
    """How one Param relates to one configured setting."""

    param: str
    setting: str
    direction: str
    #: Shown in the error: what the setting guards.
    meaning: str = ""

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"unknown direction {self.direction!r} for Param {self.param}")


def tighten(
    configured: Mapping[str, Any],
    params: Mapping[str, Any],
    rules: Sequence[ParamRule],
    *,
    config_name: str,
) -> tuple[dict[str, Any], list[str]]:
    """``configured`` with the run's Params applied where they tighten it; refuse any that loosens it.

    Returns the merged settings and one note per Param applied (for the report). A Param left empty (None) keeps the
    configured value.
    """
    merged = dict(configured)
    notes: list[str] = []
    for rule in rules:
        value = params.get(rule.param)
        if value is None:
            continue
        base = configured.get(rule.setting)
        if rule.direction == OFF_ONLY:
            if not isinstance(value, bool):
                raise LooseningParamError(f"Param {rule.param} must be true or false, got {value!r}")
            if value and not base:
                raise _loosening(rule, value, base, config_name, "switched off in the configuration")
        elif rule.direction in (AT_MOST, AT_LEAST):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise LooseningParamError(f"Param {rule.param} must be a number, got {value!r}")
            if value != value or value in (float("inf"), float("-inf")):
                raise LooseningParamError(f"Param {rule.param} must be a finite number, got {value!r}")
            if base is not None:
                if rule.direction == AT_MOST and value > base:
                    raise _loosening(rule, value, base, config_name, f"at most {base} by configuration")
                if rule.direction == AT_LEAST and value < base:
                    raise _loosening(rule, value, base, config_name, f"at least {base} by configuration")
        if value != base:
            notes.append(f"Param {rule.param} = {value} (configured {base})")
        merged[rule.setting] = value
    return merged, notes


def narrower_window(
    configured: WeeklyWindow | None,
    param_spec: Mapping[str, Any] | None,
    *,
    param: str,
    config_name: str,
    now: datetime,
) -> WeeklyWindow | None:
    """A run's business hours: only a window inside the configured one is accepted.

    The gate applies it on top of the configured hours (inside both), so even a window that passed this check
    cannot widen them; the check is there so that a wider request fails loudly instead of being quietly cut.
    """
    if not param_spec:
        return None
    # Imported here: windows need zoneinfo, and the log-rotation CLI, whose start is part of every rotation's time,
    # imports this module for deep_merge only.
    from toilless.common.policies import PolicyError, WeeklyWindow, window_is_within

    try:
        window = WeeklyWindow.from_config(dict(param_spec))
    except (PolicyError, TypeError) as err:
        raise LooseningParamError(f"Param {param}: {err}") from err
    if configured is not None and not window_is_within(window, configured, start=now):
        raise LooseningParamError(
            f"Param {param} ({window.describe()}) is wider than the configured business hours "
            f"({configured.describe()}): a run may only narrow them. Change business_hours in "
            f"include/config/{config_name}.yaml or the Variable toilless_{config_name} instead."
        )
    return window


def _loosening(rule: ParamRule, value: Any, base: Any, config_name: str, limit: str) -> LooseningParamError:
    what = f" ({rule.meaning})" if rule.meaning else ""
    return LooseningParamError(
        f"Param {rule.param} = {value!r} would loosen the configured policy{what}: {rule.setting} is {limit} "
        f"(configured {base!r}). Params may only tighten a policy; loosening it is a configuration change: "
        f"set {rule.setting} in include/config/{config_name}.yaml or the Variable toilless_{config_name}."
    )
