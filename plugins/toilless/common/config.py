"""Install-wide settings: YAML defaults in include/config/, overridden by Airflow Variables.

Read inside tasks, never at DAG-parse time (a Variable read is a metadata-DB or API call).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

from toilless.common.errors import InvalidInput

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
