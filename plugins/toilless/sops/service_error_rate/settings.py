"""The settings of one run: include/config/service_error_rate.yaml + Variable + Params, checked before anything is read.

Which service: a run names ``namespace`` and ``deployment`` (Params, or an alert's labels through the route); only a
Deployment listed under ``services`` may be looked at or acted on, so an alert cannot point the SOP at anything else.
Params only tighten (``toilless.common.config.tighten``): thresholds up, ``max_replicas`` down, restart/scale off.

The configured PromQL is checked offline here (structure, placeholders): a malformed expression fails the run at
``resolve_settings``, before Prometheus or Kubernetes is touched. What only Prometheus' parser can tell fails the
first query with Prometheus' own message, not retried (``toilless.hooks.prometheus.PrometheusQueryError``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from toilless.common import kubernetes_contracts as contracts
from toilless.common import promql
from toilless.common.config import AT_LEAST, AT_MOST, OFF_ONLY, ParamRule, number_setting, tighten
from toilless.common.errors import InvalidInput

DAG_ID = "service_error_rate"
#: Queries every configuration must have; ``saturation`` is optional (without it the SOP never scales).
REQUIRED_QUERIES = ("requests", "errors", "latency_p95_seconds")
OPTIONAL_QUERIES = ("saturation",)
#: Placeholders a query may use; each is filled with a checked, quoted value (``toilless.common.promql``).
PLACEHOLDERS = frozenset({"namespace", "deployment", "pod_regex", "window"})
DEPENDENCY_KINDS = ("postgres", "redis")
#: An Airflow Connection id (letters, digits, _ . -; at most 250 characters, Airflow's column width).
CONN_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,250}\Z")

PARAM_RULES = (
    ParamRule("min_errors", "min_errors", AT_LEAST, "5xx responses in the window before anything is investigated"),
    ParamRule("error_ratio_degraded", "error_ratio_degraded", AT_LEAST, "the 5xx ratio that counts as degraded"),
    ParamRule("max_replicas", "max_replicas", AT_MOST, "the most replicas the SOP may scale to"),
    ParamRule("allow_restart", "allow_restart", OFF_ONLY, "the automatic rollout restart"),
    ParamRule("allow_scale", "allow_scale", OFF_ONLY, "the automatic scale-up"),
)


class ServiceErrorRateSettingsError(InvalidInput):
    """A setting or Param of service_error_rate is invalid; the message names it."""


def check_namespace(value: object) -> str:
    try:
        return contracts.dns1123_label(value, "namespace")
    except contracts.KubernetesContractError as err:
        raise ServiceErrorRateSettingsError(str(err)) from None


def check_deployment(value: object) -> str:
    try:
        return contracts.dns1123_subdomain(value, "deployment")
    except contracts.KubernetesContractError as err:
        raise ServiceErrorRateSettingsError(str(err)) from None


def check_queries(queries: object) -> dict[str, str]:
    """The configured PromQL: every required query present, structurally sound, only known placeholders."""
    if not isinstance(queries, Mapping):
        raise ServiceErrorRateSettingsError("queries must be a mapping of name -> PromQL")
    unknown = set(queries) - set(REQUIRED_QUERIES) - set(OPTIONAL_QUERIES)
    if unknown:
        raise ServiceErrorRateSettingsError(f"queries: unknown query name(s) {sorted(unknown)}")
    checked: dict[str, str] = {}
    for name in (*REQUIRED_QUERIES, *OPTIONAL_QUERIES):
        expr = queries.get(name)
        if expr is None and name in OPTIONAL_QUERIES:
            continue
        if expr is None:
            raise ServiceErrorRateSettingsError(f"queries.{name} is missing")
        text = promql.check_promql(expr, what=f"queries.{name}")
        extra = promql.placeholders(text) - PLACEHOLDERS
        if extra:
            raise ServiceErrorRateSettingsError(
                f"queries.{name}: unknown placeholder(s) {sorted(extra)} (known: {sorted(PLACEHOLDERS)})"
            )
        # Render with sample values: a stray $ or a template that breaks once filled fails now, not at the query.
        promql.render(text, sample_values(), what=f"queries.{name}")
        checked[name] = text
    return checked


def sample_values() -> dict[str, str]:
    return placeholder_values("namespace", "deployment", 3600)


def placeholder_values(namespace: str, deployment: str, window_seconds: float) -> dict[str, str]:
    """What each placeholder becomes: quoted label values, the pod-name regex of the Deployment's pods, the window."""
    return {
        "namespace": promql.promql_string(namespace),
        "deployment": promql.promql_string(deployment),
        # <deployment>-<pod-template-hash>-<suffix>: the Deployment's pods, old ones of the window included.
        "pod_regex": promql.promql_string(promql.regex_literal(deployment) + "-[a-z0-9]+-[a-z0-9]+"),
        "window": promql.duration(window_seconds),
    }


def render_queries(
    queries: Mapping[str, str], namespace: str, deployment: str, window_seconds: float
) -> dict[str, str]:
    values = placeholder_values(namespace, deployment, window_seconds)
    return {name: promql.render(expr, values, what=f"queries.{name}") for name, expr in queries.items()}


def _service(services: Mapping[str, Any], key: str) -> dict[str, Any]:
    raw = services.get(key)
    if not isinstance(raw, Mapping):
        raise ServiceErrorRateSettingsError(
            f"{key!r} is not a configured service (services in include/config/{DAG_ID}.yaml: "
            f"{', '.join(sorted(services)) or 'none'}); the SOP looks at and acts on configured services only"
        )
    namespace, _, deployment = key.partition("/")
    service: dict[str, Any] = {
        "key": key,
        "namespace": check_namespace(namespace),
        "deployment": check_deployment(deployment),
        "owner_channel": str(raw.get("owner_channel") or ""),
        "container": str(raw.get("container") or ""),
    }
    where = f"services.{key}"
    service["min_replicas"] = int(
        number_setting(raw.get("min_replicas", 1), f"{where}.min_replicas", minimum=1, whole=True)
    )
    service["max_replicas"] = int(
        number_setting(raw.get("max_replicas", service["min_replicas"]), f"{where}.max_replicas", minimum=1, whole=True)
    )
    if service["max_replicas"] < service["min_replicas"]:
        raise ServiceErrorRateSettingsError(f"{where}: max_replicas is below min_replicas")
    dependencies = raw.get("dependencies") or []
    if not isinstance(dependencies, list):
        raise ServiceErrorRateSettingsError(f"{where}.dependencies must be a list")
    service["dependencies"] = [
        _dependency(item, f"{where}.dependencies[{index}]") for index, item in enumerate(dependencies)
    ]
    return service


def _dependency(raw: object, where: str) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise ServiceErrorRateSettingsError(f"{where} must be a mapping with name, kind, conn_id")
    kind = raw.get("kind")
    if kind not in DEPENDENCY_KINDS:
        raise ServiceErrorRateSettingsError(f"{where}.kind must be one of {DEPENDENCY_KINDS}, not {kind!r}")
    conn_id = raw.get("conn_id")
    if not isinstance(conn_id, str) or not CONN_ID.match(conn_id):
        raise ServiceErrorRateSettingsError(f"{where}.conn_id {conn_id!r} is not a Connection id")
    return {"name": str(raw.get("name") or conn_id)[:100], "kind": str(kind), "conn_id": conn_id}


def resolve(config: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """This run's settings: the service it is about, its queries, thresholds and bounds (Params applied)."""
    services = config.get("services") or {}
    if not isinstance(services, Mapping) or not services:
        raise ServiceErrorRateSettingsError("services: at least one '<namespace>/<deployment>' must be configured")
    namespace = params.get("namespace")
    deployment = params.get("deployment")
    if (namespace is None) != (deployment is None):
        raise ServiceErrorRateSettingsError("Params namespace and deployment go together: give both or neither")
    if namespace is None:
        key = str(config.get("default_service") or "")
    else:
        key = f"{check_namespace(namespace)}/{check_deployment(deployment)}"
    service = _service(services, key)

    flat = {
        "min_errors": number_setting(config.get("min_errors"), "min_errors", minimum=0),
        "min_requests": number_setting(config.get("min_requests"), "min_requests", minimum=0),
        "error_ratio_degraded": number_setting(
            config.get("error_ratio_degraded"), "error_ratio_degraded", minimum=0, maximum=1
        ),
        "error_ratio_failing": number_setting(
            config.get("error_ratio_failing"), "error_ratio_failing", minimum=0, maximum=1
        ),
        "latency_p95_seconds_degraded": number_setting(
            config.get("latency_p95_seconds_degraded"), "latency_p95_seconds_degraded", minimum=0
        ),
        "latency_p95_seconds_failing": number_setting(
            config.get("latency_p95_seconds_failing"), "latency_p95_seconds_failing", minimum=0
        ),
        "saturation_threshold": number_setting(config.get("saturation_threshold"), "saturation_threshold", minimum=0),
        "unhealthy_restarts": int(
            number_setting(config.get("unhealthy_restarts"), "unhealthy_restarts", minimum=1, whole=True)
        ),
        "max_replicas": service["max_replicas"],
        "allow_restart": bool(config.get("allow_restart")),
        "allow_scale": bool(config.get("allow_scale")),
    }
    tightened, notes = tighten(flat, params, PARAM_RULES, config_name=DAG_ID)
    if tightened["max_replicas"] < service["min_replicas"]:
        raise ServiceErrorRateSettingsError(
            f"Param max_replicas {tightened['max_replicas']} is below the service's min_replicas {service['min_replicas']}"
        )
    if tightened["error_ratio_failing"] < tightened["error_ratio_degraded"]:
        tightened["error_ratio_failing"] = tightened["error_ratio_degraded"]
    if tightened["latency_p95_seconds_failing"] < tightened["latency_p95_seconds_degraded"]:
        raise ServiceErrorRateSettingsError("latency_p95_seconds_failing is below latency_p95_seconds_degraded")
    service["max_replicas"] = int(tightened.pop("max_replicas"))

    prometheus = dict(config.get("prometheus") or {})
    verify = dict(config.get("verify") or {})
    scale = dict(config.get("scale") or {})
    window_minutes = number_setting(prometheus.get("window_minutes", 60), "prometheus.window_minutes", minimum=0.05)
    settings: dict[str, Any] = {
        "service": service,
        "thresholds": tightened,
        "queries": check_queries(config.get("queries")),
        "prometheus": {
            "conn_id": str(prometheus.get("conn_id") or "prometheus_default"),
            "timeout_seconds": number_setting(
                prometheus.get("timeout_seconds", 30), "prometheus.timeout_seconds", minimum=1
            ),
            "window_seconds": window_minutes * 60,
        },
        "kubernetes_conn_id": str(config.get("kubernetes_conn_id") or "kubernetes_default"),
        "dependency_timeout_seconds": number_setting(
            config.get("dependency_timeout_seconds", 5), "dependency_timeout_seconds", minimum=0.1
        ),
        "scale": {
            "step": int(number_setting(scale.get("step", 1), "scale.step", minimum=1, whole=True)),
            "cooldown_minutes": number_setting(scale.get("cooldown_minutes", 30), "scale.cooldown_minutes", minimum=0),
        },
        "gate": dict(config.get("gate") or {}),
        "verify": {
            "window_seconds": number_setting(verify.get("window_seconds", 300), "verify.window_seconds", minimum=1),
            "settle_seconds": number_setting(verify.get("settle_seconds", 60), "verify.settle_seconds", minimum=0),
            "timeout_minutes": number_setting(
                verify.get("timeout_minutes", 30), "verify.timeout_minutes", minimum=0.01
            ),
            "poll_seconds": number_setting(verify.get("poll_seconds", 60), "verify.poll_seconds", minimum=1),
        },
        "channels": {
            "report": str(config.get("report_channel") or "ops"),
            "owner": service["owner_channel"] or str(config.get("owner_channel") or "developers"),
            "escalation": str(config.get("escalation_channel") or "urgent"),
        },
        "respect_maintenance_window": bool(config.get("respect_maintenance_window", True)),
        "business_hours": config.get("business_hours"),
        "maintenance_window": config.get("maintenance_window"),
        "notes": notes,
    }
    # Render once now: a value that cannot be quoted or a template that breaks once filled fails here.
    render_queries(
        settings["queries"], service["namespace"], service["deployment"], settings["prometheus"]["window_seconds"]
    )
    return settings
