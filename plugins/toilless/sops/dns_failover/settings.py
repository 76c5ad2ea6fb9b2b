"""A run's settings: the configuration (YAML + Variable) checked, with the run's Params applied (pure: no Airflow).

Everything that will reach a DNS server, the tool or Route 53 is validated here, before anything is read or changed
(``validation``): a bad address, a missing tool or an invalid name fails the run at once with a clear message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from toilless.common.config import AT_LEAST, OFF_ONLY, ParamRule, number_setting, tighten
from toilless.sops.dns_failover import validation
from toilless.sops.dns_failover.validation import DnsInputError

DAG_ID = "dns_failover"
PROVIDERS = ("command", "route53")
PARAM_RULES = (
    ParamRule("wait_minutes", "wait_minutes", AT_LEAST, "how long a reachable but failing server gets to recover"),
    ParamRule("allow_failover", "allow_failover", OFF_ONLY, "the automatic failover"),
)


def resolve(configured: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The run's settings (JSON-able). Raises :class:`DnsInputError` / ``LooseningParamError`` (both InvalidInput)."""
    settings, notes = tighten(configured, params, PARAM_RULES, config_name=DAG_ID)
    provider = settings.get("provider")
    if provider not in PROVIDERS:
        raise DnsInputError(f"provider {provider!r}: one of {', '.join(PROVIDERS)}")
    settings["servers"] = validation.check_servers(settings.get("servers"))
    settings["queries"] = validation.check_queries(settings.get("queries"))
    for name, server in settings["servers"].items():
        if server.get("log_argv"):
            server["log_argv"] = validation.check_command(server["log_argv"], what=f"servers.{name}.log_argv")
    if provider == "command":
        command = dict(settings.get("command") or {})
        command["argv"] = validation.check_command(command.get("argv"), what="command.argv (the dnsTool)")
        command["timeout_seconds"] = _positive(command.get("timeout_seconds", 30), "command.timeout_seconds")
        settings["command"] = command
    else:
        settings["route53"] = _route53(dict(settings.get("route53") or {}), settings["servers"])
    probe = dict(settings.get("probe") or {})
    tries = probe.get("tries", 3)
    if isinstance(tries, bool) or not isinstance(tries, int) or not 1 <= tries <= 10:
        raise DnsInputError(f"probe.tries {tries!r}: an integer 1-10")
    settings["probe"] = {
        "tries": tries,
        "timeout_seconds": _positive(probe.get("timeout_seconds", 1.0), "probe.timeout_seconds", maximum=30),
        "max_latency_ms": _positive(probe.get("max_latency_ms", 500), "probe.max_latency_ms"),
    }
    wait = settings.get("wait_minutes", 5)
    if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 <= wait <= 120:
        raise DnsInputError(f"wait_minutes {wait!r}: a number 0-120")
    settings["wait_minutes"] = float(wait)
    settings["poll_seconds"] = _positive(settings.get("poll_seconds", 15), "poll_seconds", maximum=600)
    settings["allow_failover"] = bool(settings.get("allow_failover", True))
    log = dict(settings.get("log") or {})
    settings["log"] = {
        "allowed_roots": [str(root) for root in log.get("allowed_roots") or []],
        "max_lines": int(_positive(log.get("max_lines", 40), "log.max_lines", maximum=500)),
        "max_bytes": int(_positive(log.get("max_bytes", 65536), "log.max_bytes", maximum=10 * 1024 * 1024)),
    }
    settings["dry_run"] = bool(params.get("dry_run"))
    settings["notes"] = notes
    return settings


def _route53(route53: dict[str, Any], servers: Mapping[str, Any]) -> dict[str, Any]:
    from toilless.hooks.route53 import Route53ContractError, check_hosted_zone_id

    try:
        route53["hosted_zone_id"] = check_hosted_zone_id(route53.get("hosted_zone_id"))
    except Route53ContractError as err:
        raise DnsInputError(f"route53.{err}") from None
    route53["record_name"] = validation.check_dns_name(route53.get("record_name"), what="route53.record_name")
    kind = str(route53.get("record_type", "A")).upper()
    if kind not in ("A", "AAAA"):
        raise DnsInputError(f"route53.record_type {kind!r}: A or AAAA")
    route53["record_type"] = kind
    import ipaddress

    for name, server in servers.items():
        try:
            ipaddress.ip_address(server["address"])
        except ValueError:
            raise DnsInputError(
                f"servers.{name}.address {server['address']!r}: route53 records hold IP addresses, not host names"
            ) from None
    checks = route53.get("health_checks") or {}
    unknown = set(checks) - set(servers)
    if unknown:
        raise DnsInputError(f"route53.health_checks names unknown servers: {', '.join(sorted(unknown))}")
    if route53.get("shutdown_argv"):
        route53["shutdown_argv"] = validation.check_command(route53["shutdown_argv"], what="route53.shutdown_argv")
    route53["insync_timeout_seconds"] = _positive(
        route53.get("insync_timeout_seconds", 120), "route53.insync_timeout_seconds", maximum=3600
    )
    return route53


def _positive(value: Any, what: str, *, maximum: float | None = None) -> float:
    return number_setting(value, what, above=0, maximum=maximum, error=DnsInputError)


def standby_of(settings: Mapping[str, Any], active: str) -> str:
    [standby] = [name for name in settings["servers"] if name != active]
    return standby
