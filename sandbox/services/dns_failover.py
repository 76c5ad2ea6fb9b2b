"""DNS failover demo (dns_failover): two real DNS servers and the team's ``dnsTool``, for `make run`.

* ``ns1`` (active) and ``ns2`` (standby): dnsmasq on 127.0.0.1 and 127.0.0.2, free ports, serving ``example.test``
  (``www`` and ``api``), logs under ``<sandbox>/dns/``.
* ``<sandbox>/dns/bin/dnsTool``: the stand-in for the networking team's tool; it really stops and starts the servers
  and switches which one is active.

The Variable ``toilless_dns_failover`` points the DAG at them (provider ``command``). Break the active server, then
send the alert or trigger ``dns_failover``::

    .venv/bin/python -m sandbox.dns_pair <sandbox>/dns break ns1 stopped      # or servfail, wrong_data, slow
    .venv/bin/python -m sandbox.dns_pair <sandbox>/dns reset

``TOILLESS_SANDBOX_DNS_WAIT_MINUTES`` sets the SOP's wait (default the SOP's 5 minutes; the benchmark uses 0).
"""

from __future__ import annotations

import json
import os
from typing import Any

from sandbox.dns_pair import RECORDS, DnsPair
from sandbox.service import SandboxContext, Service

WAIT_ENV = "TOILLESS_SANDBOX_DNS_WAIT_MINUTES"


def sandbox_settings(pair: DnsPair, wait_minutes: float = 5.0) -> dict[str, Any]:
    """The SOP's settings for the pair (the Variable override the sandbox sets)."""
    return {
        "provider": "command",
        "command": {"argv": [str(pair.tool)], "timeout_seconds": 20},
        "servers": pair.servers_config(),
        "log": {"allowed_roots": [str(pair.home)], "max_lines": 30, "max_bytes": 65536},
        "queries": [{"name": name, "type": "A", "expect": [address]} for name, address in RECORDS.items()],
        "probe": {"tries": 2, "timeout_seconds": 0.5, "max_latency_ms": 250},
        "wait_minutes": wait_minutes,
        "poll_seconds": 5,
        # The demo fails over whenever it is asked to; a real installation keeps the maintenance window.
        "respect_maintenance_window": False,
        "gate": {"cooldown_minutes": 0, "circuit_breaker": {"max_actions": 20, "window_hours": 1}},
    }


class DnsFailoverService(Service):
    name = "dns_failover"
    order = 50
    description = "Two DNS servers (dnsmasq) and the dnsTool stand-in (dns_failover)"

    def __init__(self) -> None:
        self.pair: DnsPair | None = None

    def start(self, ctx: SandboxContext) -> None:
        self.pair = DnsPair(ctx.home / "dns").start()
        ctx.published["dns_failover"] = {"home": str(self.pair.home), "tool": str(self.pair.tool)}

    def stop(self) -> None:
        if self.pair is not None:
            self.pair.stop()

    def variables(self, ctx: SandboxContext) -> dict[str, str]:
        assert self.pair is not None
        wait = float(os.environ.get(WAIT_ENV) or 5)
        return {"toilless_dns_failover": json.dumps(sandbox_settings(self.pair, wait))}

    def summary(self, ctx: SandboxContext) -> str:
        assert self.pair is not None
        servers = ", ".join(
            f"{name} {address}:{port}" for name, (address, port) in ((n, self.pair.address(n)) for n in ("ns1", "ns2"))
        )
        return (
            f"{self.description}: {servers}; break one with "
            f"`.venv/bin/python -m sandbox.dns_pair {self.pair.home} break ns1 stopped`, then trigger dns_failover"
        )
