"""App down: the resolved settings checked before anything is read or changed (pure, no Airflow).

Which service: the run's ``deployment`` Param, else the alert's ``deployment`` (or ``app``) label, else the only
configured service. A name that is not configured is refused: the SOP only acts on what configuration lists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from toilless.common import kubernetes_contracts as contracts
from toilless.common.config import number_setting
from toilless.common.errors import InvalidInput
from toilless.sops.app_down.decide import RecoveryPolicy

ROLES = ("customer_support", "networking", "ops", "database", "development")
ALERT_LABELS = ("deployment", "app", "service")
_USER_GROUP = re.compile(r"^S[A-Z0-9]{2,20}\Z")
MAX_ENDPOINTS = 10


class AppDownSettingsError(InvalidInput):
    """The app_down configuration or Params are invalid; the message says which value."""


def endpoint_url(value: Any) -> str:
    """An http(s) URL with a host, at most 2048 characters: anything else is refused before it is probed."""
    if not isinstance(value, str) or not value or len(value) > 2048 or any(c in value for c in "\r\n\t "):
        raise AppDownSettingsError(f"endpoint {value!r} must be an http(s) URL without spaces")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AppDownSettingsError(f"endpoint {value!r} is not an http(s) URL (scheme {parts.scheme!r})")
    return value


def choose_service(settings: Mapping[str, Any], params: Mapping[str, Any], alert: Mapping[str, Any] | None) -> str:
    services = settings.get("services") or {}
    if not isinstance(services, Mapping) or not services:
        raise AppDownSettingsError("no services configured: add one under `services` in include/config/app_down.yaml")
    wanted = params.get("deployment")
    if not wanted and alert:
        labels = alert.get("labels") or {}
        wanted = next((labels[key] for key in ALERT_LABELS if isinstance(labels.get(key), str) and labels[key]), None)
    if not wanted:
        if len(services) == 1:
            return next(iter(services))
        raise AppDownSettingsError(f"which service? name one of {sorted(services)} in the `deployment` Param")
    if wanted not in services:
        raise AppDownSettingsError(
            f"unknown Deployment {str(wanted)[:80]!r}: app_down only acts on configured services ({sorted(services)})"
        )
    return str(wanted)


def service_settings(raw: Any, name: str) -> dict[str, Any]:
    """One service's section, checked: Kubernetes names, endpoint URLs."""
    if not isinstance(raw, Mapping):
        raise AppDownSettingsError(f"services.{name} must be a mapping")
    endpoints = raw.get("endpoints") or {}
    checked = {
        "name": name,
        "kubernetes_conn_id": str(raw.get("kubernetes_conn_id") or "kubernetes_default"),
        "namespace": contracts.dns1123_label(raw.get("namespace"), f"services.{name}.namespace"),
        "deployment": contracts.dns1123_subdomain(raw.get("deployment", name), f"services.{name}.deployment"),
        "service": contracts.dns1035_label(raw["service"], f"services.{name}.service") if raw.get("service") else "",
        "ingress": contracts.dns1123_subdomain(raw["ingress"], f"services.{name}.ingress")
        if raw.get("ingress")
        else "",
        "endpoints": {},
    }
    for kind in ("public", "internal"):
        urls = endpoints.get(kind) or []
        if not isinstance(urls, list) or len(urls) > MAX_ENDPOINTS:
            raise AppDownSettingsError(f"services.{name}.endpoints.{kind} must be a list of at most {MAX_ENDPOINTS}")
        checked["endpoints"][kind] = [endpoint_url(url) for url in urls]
    if not any(checked["endpoints"].values()):
        raise AppDownSettingsError(f"services.{name} has no endpoints to probe")
    return checked


def roles(raw: Any, channels: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """escalation.roles: role -> {channel, user_group}; the channel must be a configured Slack channel name."""
    if not isinstance(raw, Mapping) or not raw:
        raise AppDownSettingsError("escalation.roles must name at least one role")
    result = {}
    for role, spec in raw.items():
        spec = {"channel": spec} if isinstance(spec, str) else dict(spec or {})
        channel = spec.get("channel")
        if channel not in channels:
            raise AppDownSettingsError(f"escalation.roles.{role}: unknown Slack channel {channel!r}")
        group = spec.get("user_group") or ""
        if group and not _USER_GROUP.match(str(group)):
            raise AppDownSettingsError(f"escalation.roles.{role}.user_group {group!r} is not a Slack user group id")
        result[str(role)] = {"channel": str(channel), "user_group": str(group)}
    return result


def recovery_policy(raw: Mapping[str, Any]) -> RecoveryPolicy:
    scale = raw.get("scale") or {}
    minimum = int(
        number_setting(
            scale.get("min_replicas"), "recovery.scale.min_replicas", error=AppDownSettingsError, minimum=0, whole=True
        )
    )
    maximum = int(
        number_setting(
            scale.get("max_replicas"), "recovery.scale.max_replicas", error=AppDownSettingsError, minimum=1, whole=True
        )
    )
    contracts.replicas(maximum)
    if minimum > maximum:
        raise AppDownSettingsError(f"recovery.scale: min_replicas {minimum} is above max_replicas {maximum}")
    return RecoveryPolicy(
        rollout_window=timedelta(
            minutes=number_setting(
                raw.get("rollout_window_minutes"),
                "recovery.rollout_window_minutes",
                error=AppDownSettingsError,
                minimum=1,
                maximum=7 * 24 * 60,
            )
        ),
        allow_rollback=bool(raw.get("allow_rollback", True)),
        allow_restart=bool(raw.get("allow_restart", True)),
        allow_scale=bool(raw.get("allow_scale", True)),
        min_replicas=minimum,
        max_replicas=maximum,
        scale_step=int(
            number_setting(scale.get("step"), "recovery.scale.step", error=AppDownSettingsError, minimum=1, whole=True)
        ),
        saturation_pct=float(
            number_setting(
                scale.get("saturation_pct"),
                "recovery.scale.saturation_pct",
                error=AppDownSettingsError,
                minimum=1,
                maximum=1000,
            )
        ),
    )


def policy_from_settings(settings: Mapping[str, Any]) -> RecoveryPolicy:
    policy = recovery_policy(settings["recovery"])
    if not settings.get("allow_action", True):
        return RecoveryPolicy(
            **{**policy.__dict__, "allow_rollback": False, "allow_restart": False, "allow_scale": False}
        )
    return policy
