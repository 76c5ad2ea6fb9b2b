"""The two ways to know and switch the active DNS server, behind one small interface (hooks built lazily).

- ``command``: the networking team's ``dnsTool`` (:class:`toilless.hooks.dns.DnsToolHook`) with the SOP's calls;
- ``route53``: the service name's failover record set (:class:`toilless.hooks.route53.Route53FailoverHook`); the
  active server is the one the PRIMARY record points at. Route 53 cannot stop a server: ``shutdown_argv`` (if set)
  does, else the shutdown is reported as not done, and the forced failover removes the old server's record.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from typing import Any, Protocol

from toilless.common.redaction import mask_secrets


class DnsProvider(Protocol):
    kind: str

    def active_server(self) -> str: ...

    def shutdown(self, server: str) -> dict[str, Any]: ...

    def failover(self, standby: str, *, force: bool) -> dict[str, Any]: ...


class CommandProvider:
    kind = "command"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        from toilless.hooks.dns import DnsToolHook

        command = settings["command"]
        self.servers = list(settings["servers"])
        self.hook = DnsToolHook(command=command["argv"], timeout_seconds=float(command["timeout_seconds"]))

    def active_server(self) -> str:
        return self.hook.active_server(self.servers)

    def shutdown(self, server: str) -> dict[str, Any]:
        return self.hook.shutdown(server)

    def failover(self, standby: str, *, force: bool) -> dict[str, Any]:
        return self.hook.failover(standby, force=force)


class Route53Provider:
    kind = "route53"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        from toilless.hooks.route53 import Route53FailoverHook

        self.route53 = dict(settings["route53"])
        self.servers = {name: dict(server) for name, server in settings["servers"].items()}
        self.hook = Route53FailoverHook(
            hosted_zone_id=self.route53["hosted_zone_id"],
            record_name=self.route53["record_name"],
            record_type=self.route53["record_type"],
            aws_conn_id=self.route53.get("aws_conn_id") or "aws_default",
        )

    def active_server(self) -> str:
        primary = self.hook.failover_records().get("PRIMARY")
        value = self.hook.record_value(primary)
        for name, server in self.servers.items():
            if server["address"] == value:
                return name
        raise LookupError(
            f"the PRIMARY record of {self.route53['record_name']} points at {str(value)[:60]!r}, "
            "which is none of the configured servers"
        )

    def shutdown(self, server: str) -> dict[str, Any]:
        argv = list(self.route53.get("shutdown_argv") or [])
        if not argv:
            return {"ok": False, "call": [], "detail": "route53 cannot stop a server and no shutdown_argv is set"}
        try:
            result = subprocess.run(
                [*argv, server], capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            return {"ok": False, "call": [*argv, server], "detail": mask_secrets(err)[:500]}
        text = (result.stdout[:2000] + " " + result.stderr[:2000]).strip()
        return {"ok": result.returncode == 0, "call": [*argv, server], "detail": mask_secrets(text)[:500]}

    def failover(self, standby: str, *, force: bool) -> dict[str, Any]:
        old = self.active_server()
        checks = self.route53.get("health_checks") or {}
        change = self.hook.move_primary(
            to_address=self.servers[standby]["address"],
            to_health_check=checks.get(standby),
            old_address=self.servers[old]["address"],
            old_health_check=checks.get(old),
            remove_old=force,
            wait_seconds=float(self.route53.get("insync_timeout_seconds", 120)),
        )
        ok = change["status"] == "INSYNC"
        what = f"PRIMARY -> {standby}" + (f", {old}'s SECONDARY record removed" if force else f", SECONDARY -> {old}")
        return {
            "ok": ok,
            "call": ["ChangeResourceRecordSets"],
            "detail": f"{what}: change {change['change_id']} {change['status']}",
        }


def build_provider(settings: Mapping[str, Any]) -> DnsProvider:
    if settings["provider"] == "route53":
        return Route53Provider(settings)
    return CommandProvider(settings)
