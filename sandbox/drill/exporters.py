"""What each drill's exporter reports: one small function per scenario, read live from the sandbox on every scrape.

An exporter returns ``{"metric{label=\"value\",...}": value}`` from the running sandbox's published facts, the way a
real exporter reads the system it watches (a blackbox probe, a queue depth, a disk's free bytes): Prometheus then sees
what production monitoring would see, never a value the drill sets to fire the alert.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from sandbox.drill import dns, logmount, orders, rds, replica

Samples = dict[str, float]


def labels_text(labels: dict[str, str]) -> str:
    """Prometheus text-format labels (values escaped as the exposition format requires)."""

    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    return ",".join(f'{key}="{escape(value)}"' for key, value in sorted(labels.items()))


def app_probe(published: dict[str, Any]) -> Samples:
    """Blackbox style: GET the demo app's public /health; ``probe_success`` is 1 on an answer below 500."""
    try:
        with urllib.request.urlopen(f"{published['app_down']['app']}/health", timeout=2) as answer:
            success = 1 if answer.status < 500 else 0
    except urllib.error.HTTPError as err:
        success = 1 if err.code < 500 else 0
    except OSError:
        success = 0
    return {f"probe_success{{{labels_text({'namespace': 'shop', 'deployment': 'web'})}}}": float(success)}


def parse_text(text: str) -> Samples:
    """The Prometheus text format's samples (``series value`` lines; comments and timestamps ignored)."""
    samples: Samples = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        series, _, rest = line.rpartition("}") if "}" in line else line.partition(" ")
        series = series + "}" if "}" in line else series
        fields = rest.split()
        if not series or not fields:
            raise ValueError(f"not a sample line: {line[:200]!r}")
        samples[series.strip()] = float(fields[0])
    return samples


def app_requests(published: dict[str, Any]) -> Samples:
    """The demo app's own ``/metrics``: its answers by code (``http_requests_total{service="web",code=...}``)."""
    with urllib.request.urlopen(f"{published['app_down']['app']}/metrics", timeout=2) as answer:
        return parse_text(answer.read(1_000_000).decode("utf-8", "replace"))


EXPORTERS: dict[str, Callable[[dict[str, Any]], Samples]] = {
    "app_probe": app_probe,
    "app_requests": app_requests,
    "dns_probe": dns.dns_probe,
    "replica_lag": replica.replica_lag_exporter,
    "order_backlog": orders.export,
    "log_mount_filesystem": logmount.export,
    "rds_free_storage": rds.export,
}
