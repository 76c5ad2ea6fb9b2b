"""A run's settings: the configuration with the run's Params over it, every value checked. Pure, no Airflow.

Params may only tighten the configured policy (``toilless.common.config.tighten``): more headroom, fewer users per
replica, a lower replica cap, apply or GitHub filing switched off, a shorter approval wait. The namespace must be one
the configuration allows. Load figures the release brings (users, growth) are the run's own input, checked for range.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from toilless.common.config import AT_LEAST, AT_MOST, FREE, OFF_ONLY, ParamRule, tighten
from toilless.common.errors import InvalidInput
from toilless.sops.release_capacity_plan.contracts import (
    ContractError,
    check_label,
    check_subdomain,
    cpu_millicores,
    memory_bytes,
)
from toilless.sops.release_capacity_plan.plan import Figures
from toilless.sops.release_capacity_plan.reading import component_from_param

CONFIG = "release_capacity_plan"
#: A release name is also a directory name: letters, digits, ``.``, ``_``, ``-``.
RELEASE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")
MAX_DEPLOYMENTS = 100
MAX_COMPONENTS = 20

FIGURE_RULES = (
    ParamRule("users_per_replica", "users_per_replica", AT_MOST, "the load-tested users one replica serves"),
    ParamRule("headroom_pct", "headroom_pct", AT_LEAST, "extra capacity on top of the expected users"),
    ParamRule("max_replicas", "max_replicas", AT_MOST, "the most replicas a plan may ask for"),
    ParamRule("memory_utilisation_pct", "memory_utilisation_pct", FREE),
    ParamRule("memory_growth_per_user_pct", "memory_growth_per_user_pct", FREE),
    ParamRule("cpu_utilisation_pct", "cpu_utilisation_pct", FREE),
    ParamRule("cpu_growth_per_user_pct", "cpu_growth_per_user_pct", FREE),
)
SWITCH_RULES = (
    ParamRule("apply", "apply_enabled", OFF_ONLY, "applying the plan to the cluster"),
    ParamRule("file_issue", "github_enabled", OFF_ONLY, "filing the as-built on GitHub"),
    ParamRule("approval_timeout_minutes", "approval_timeout_minutes", AT_MOST, "how long an approval may wait"),
)
LIST_PARAMS = ("stakeholders", "data_changes", "system_changes", "design_notes", "tests", "deployment_notes")


def resolve(config: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The run's settings as plain data (JSON-able, for XCom). Raises InvalidInput with the value and the rule."""
    release = params.get("release")
    if not isinstance(release, str) or not RELEASE.match(release):
        raise InvalidInput(
            f"Param release must name the release (letters, digits, '.', '_', '-', at most 100), got {release!r:.80}"
        )
    allowed = [check_label(ns, "allowed namespace") for ns in config.get("allowed_namespaces") or []]
    namespace = check_label(params.get("namespace") or config.get("namespace"), "namespace")
    if namespace not in allowed:
        raise InvalidInput(
            f"namespace {namespace!r} is not one this SOP may plan for (allowed_namespaces: {allowed}); "
            f"add it to include/config/{CONFIG}.yaml or the Variable toilless_{CONFIG}"
        )
    names = _list(params.get("deployments") or config.get("deployments"), "deployments")
    if not names or len(names) > MAX_DEPLOYMENTS:
        raise InvalidInput(f"name 1 to {MAX_DEPLOYMENTS} Deployments, got {len(names)}")
    names = [check_subdomain(name, "Deployment name") for name in names]
    if len(set(names)) != len(names):
        raise InvalidInput(f"Deployments named twice: {names}")

    configured = dict(config["figures"])
    figures_config, notes = tighten(configured, params, FIGURE_RULES, config_name=CONFIG)
    switches_config = {
        "apply_enabled": bool((config.get("apply") or {}).get("enabled")),
        "github_enabled": bool((config.get("github") or {}).get("enabled")),
        "approval_timeout_minutes": float((config.get("approval") or {}).get("timeout_minutes", 60)),
    }
    switches, switch_notes = tighten(switches_config, params, SWITCH_RULES, config_name=CONFIG)
    current_users = params.get("current_concurrent_users")
    expected_users = params.get("expected_concurrent_users")
    for key, value in (("current_concurrent_users", current_users), ("expected_concurrent_users", expected_users)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"Param {key} must be a whole number of users, got {value!r:.80}")
    try:
        figures = Figures(
            current_concurrent_users=current_users,
            expected_concurrent_users=expected_users,
            users_per_replica=_number(figures_config["users_per_replica"], int),
            headroom_pct=_number(figures_config["headroom_pct"], float),
            memory_utilisation_pct=_number(figures_config["memory_utilisation_pct"], float),
            memory_growth_per_user_pct=_number(figures_config["memory_growth_per_user_pct"], float),
            cpu_utilisation_pct=_number(figures_config["cpu_utilisation_pct"], float),
            cpu_growth_per_user_pct=_number(figures_config["cpu_growth_per_user_pct"], float),
            memory_step_bytes=memory_bytes(figures_config["memory_step"], "figures.memory_step"),
            cpu_step_millicores=cpu_millicores(figures_config["cpu_step"], "figures.cpu_step"),
            max_replicas=_number(figures_config["max_replicas"], int),
        )
    except KeyError as err:
        raise InvalidInput(f"figures.{err.args[0]} is missing in include/config/{CONFIG}.yaml") from err
    components = _list(params.get("new_components"), "new_components")
    if len(components) > MAX_COMPONENTS:
        raise InvalidInput(f"at most {MAX_COMPONENTS} new components, got {len(components)}")
    parsed_components = [component_from_param(component) for component in components]
    if {c.name for c in parsed_components} & set(names):
        raise InvalidInput("a new component has the name of an existing Deployment")
    github = dict(config.get("github") or {})
    if switches["github_enabled"] and not github.get("repo"):
        raise InvalidInput(f"github.enabled needs github.repo in include/config/{CONFIG}.yaml")
    inputs = {key: _strings(params.get(key), key) for key in LIST_PARAMS}
    inputs["code_changes"] = _code_changes(params.get("code_changes"))
    metrics_source = str((config.get("metrics") or {}).get("source") or "none")
    if metrics_source not in ("none", "metrics_api"):
        raise InvalidInput(f"metrics.source must be none or metrics_api, got {metrics_source!r:.40}")
    hpa = dict(config.get("hpa") or {})
    apply_settings = dict(config.get("apply") or {})
    return {
        "release": release,
        "namespace": namespace,
        "deployments": names,
        "kubernetes_conn_id": str(config.get("kubernetes_conn_id") or "kubernetes_default"),
        "figures": {**figures.__dict__},
        "new_components": [c.__dict__ for c in parsed_components],
        "inputs": inputs,
        "metrics_source": metrics_source,
        "kubernetes_version": str(config.get("kubernetes_version") or "1.33"),
        "hpa": {
            "suggest": bool(hpa.get("suggest")),
            "max_factor": _number(hpa.get("max_factor", 1.25), float),
            "target_cpu_utilisation_pct": _number(hpa.get("target_cpu_utilisation_pct", 70), int),
        },
        "as_built_dir": _required(config, "as_built_dir"),
        "github": {**github, "enabled": switches["github_enabled"]},
        "apply": {
            "enabled": switches["apply_enabled"],
            "verify_timeout_seconds": _number(apply_settings.get("verify_timeout_seconds", 600), float),
            "verify_poll_seconds": _number(apply_settings.get("verify_poll_seconds", 5), float),
        },
        "approval_timeout_minutes": switches["approval_timeout_minutes"],
        "report_channel": str(config.get("report_channel") or "non_urgent"),
        "gate": dict(config.get("gate") or {}),
        "respect_maintenance_window": bool(config.get("respect_maintenance_window", True)),
        "maintenance_window": config.get("maintenance_window"),
        "dry_run": bool(params.get("dry_run")),
        "notes": [*notes, *switch_notes],
    }


def _number(value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ContractError(f"expected a number, got {value!r:.80}")
    if kind is int and value != int(value):
        raise ContractError(f"expected a whole number, got {value!r}")
    return kind(value)


def _list(values: Any, key: str) -> list[Any]:
    if values is None:
        return []
    if not isinstance(values, list):
        raise InvalidInput(f"Param {key} must be a list, got {type(values).__name__}")
    return values


def _strings(values: Any, key: str) -> list[str]:
    if values is None:
        return []
    if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
        raise InvalidInput(f"Param {key} must be a list of strings")
    return values


def _code_changes(values: Any) -> list[dict[str, str]]:
    if values is None:
        return []
    if not isinstance(values, list) or not all(isinstance(value, Mapping) for value in values):
        raise InvalidInput('Param code_changes must be a list of {"kind", "ticket", "summary"} objects')
    return [{key: str(value.get(key) or "") for key in ("kind", "ticket", "summary")} for value in values]


def _required(config: Mapping[str, Any], key: str) -> str:
    value = config.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{key} must be set in include/config/{CONFIG}.yaml")
    return value
