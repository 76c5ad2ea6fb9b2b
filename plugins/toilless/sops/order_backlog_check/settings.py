"""A run's settings: the SOP's YAML/Variable, the install-wide policies, then the run's Params (no Airflow import).

Every value is checked before anything is read or changed; Params may only tighten (``toilless.common.config``
through ``restart_policy``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from toilless.common import gate
from toilless.common.config import LooseningParamError
from toilless.common.errors import InvalidInput
from toilless.sops.order_backlog_check import restart_policy
from toilless.sops.order_backlog_check.capacity import Capacity
from toilless.sops.order_backlog_check.log_files import DEFAULT_MAX_DECOMPRESSED_BYTES, LogAccessError, resolve_log_path
from toilless.sops.order_backlog_check.verdict import Thresholds

_PARAM_THRESHOLDS = {
    "outstanding_threshold": "outstanding_orders",
    "oldest_order_age_minutes": "oldest_order_age_minutes",
    "stuck_error_repeats": "stuck_error_repeats",
}


class SettingsError(InvalidInput):
    """A run Param or a setting is invalid; nothing has been read or changed (never retried)."""


def _is_configured_log(resolved: str, source: Any, path: Any, roots: Sequence[str]) -> bool:
    """True if ``resolved`` is the configured log file (the configuration reads a file, and it is that file)."""
    if source != "file" or not path:
        return False
    try:
        return str(resolve_log_path(str(path), roots)) == resolved
    except LogAccessError:
        return False


def resolve_settings(config: dict[str, Any], toilless_config: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """This run's settings: the SOP config, the install-wide policies, then the run's Params on top.

    Every value is checked here, before anything is read or changed: numbers must be integers (a string
    such as ``"1; DROP TABLE orders"`` is refused, never passed on), a log path must lie under a configured
    root, windows must parse. Returns a JSON-able dict the later steps (and the trigger) use as is.
    """
    settings = copy.deepcopy(config)
    settings["thresholds"] = dict(config.get("thresholds") or {})
    settings["log"] = dict(config.get("log") or {})
    for param in _PARAM_THRESHOLDS:
        value = params.get(param)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise SettingsError(f"Param {param} must be an integer, got {value!r}")
    try:
        # Params may tighten the configured policy, never loosen it (restart_policy).
        settings["thresholds"] = restart_policy.tighten_thresholds(settings["thresholds"], params)
        settings["allow_restart"] = restart_policy.allow_restart(config, params)
        Thresholds.from_config(settings["thresholds"])
        Capacity.from_config(settings.get("processor") or {})
    except ValueError as err:  # LooseningParamError included
        raise SettingsError(str(err)) from err

    log_settings = settings["log"]
    if log_settings.get("source") not in ("file", "kubernetes"):
        raise SettingsError(f"log.source must be file or kubernetes, got {log_settings.get('source')!r}")
    roots = [str(root) for root in log_settings.get("allowed_roots") or []]
    raw_path = params.get("log_path")
    configured_source, configured_path = log_settings.get("source"), log_settings.get("path")
    if raw_path is not None:
        if not isinstance(raw_path, str):
            raise SettingsError(f"Param log_path must be a string, got {raw_path!r}")
        log_settings["source"] = "file"
        log_settings["path"] = raw_path
    for key, low, default in (
        ("max_files", 1, None),
        ("max_bytes", 1, None),
        ("excerpt_lines", 0, 15),
        ("max_decompressed_bytes", 1, DEFAULT_MAX_DECOMPRESSED_BYTES),
    ):
        value = log_settings.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise SettingsError(f"log.{key} must be an integer of at least {low}, got {value!r}")
        log_settings[key] = value
    if log_settings["source"] == "file":
        try:
            log_settings["path"] = str(resolve_log_path(str(log_settings.get("path") or ""), roots))
        except LogAccessError as err:
            raise SettingsError(str(err)) from err
    if raw_path is not None and not _is_configured_log(log_settings["path"], configured_source, configured_path, roots):
        # The log is the evidence for a restart: one chosen by whoever triggers the run (a crafted file, or a file
        # while the restart still targets the Deployment) may diagnose and report, never restart.
        settings["allow_restart"] = False
        settings["restart_off_reason"] = (
            "the log was chosen by the log_path Param, not the configured log: diagnose and report only"
        )

    hours, maintenance = gate.window_specs(toilless_config, config)
    try:
        gate.time_policy(toilless_config, config)  # the one place the windows are resolved and checked
        # A run may narrow business hours (applied on top of the configured ones), never widen them.
        run_hours = restart_policy.run_business_hours(hours, params)
    except (LooseningParamError, gate.GateConfigError) as err:
        raise SettingsError(str(err)) from err
    settings["business_hours"] = hours
    settings["run_business_hours"] = run_hours
    settings["maintenance_window"] = maintenance

    restart = dict(config.get("restart") or {})
    if restart.get("method") not in ("kubernetes", "command", "none"):
        raise SettingsError(f"restart.method must be kubernetes, command or none, got {restart.get('method')!r}")
    command = restart.get("command")
    if restart["method"] == "command" and not (
        isinstance(command, list) and command and all(isinstance(part, str) and part for part in command)
    ):
        # Found here, not when restarting: by then the marker is written and each retry would fail the same way.
        raise SettingsError(f"restart.command must be a non-empty argv list of strings (no shell), got {command!r}")
    settings["restart"] = restart
    settings["dry_run"] = bool(params.get("dry_run", False))
    return settings
