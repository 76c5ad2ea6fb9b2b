"""Recovery checks, read from the sandbox independently of the runbook (the drill does not trust the run's report)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from sandbox.app_down_data import DEPLOYMENT, GOOD_IMAGE, NAMESPACE
from sandbox.drill import logmount, orders, rds
from sandbox.drill.dns import dns_resolves
from sandbox.drill.replica import replica_caught_up


def app_answers(published: dict[str, Any]) -> bool:
    """The demo app's public /health answers 200 (what the probe exporter reports as probe_success)."""
    try:
        with urllib.request.urlopen(f"{published['app_down']['app']}/health", timeout=3) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def deployment(published: dict[str, Any]) -> dict[str, Any]:
    url = f"{published['app_down']['kubernetes']}/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{DEPLOYMENT}"
    with urllib.request.urlopen(url, timeout=5) as answer:
        return dict(json.loads(answer.read()))


def app_healthy(published: dict[str, Any]) -> bool:
    """Healthy: the app answers 200 and the Deployment runs the release image again."""
    if not app_answers(published):
        return False
    try:
        containers = deployment(published)["spec"]["template"]["spec"]["containers"]
    except (urllib.error.URLError, OSError, KeyError, ValueError):
        return False
    return all(container.get("image") == GOOD_IMAGE for container in containers)


CHECKS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "app_healthy": app_healthy,
    "dns_resolves": dns_resolves,
    "replica_caught_up": replica_caught_up,
    "backlog_drained": orders.drained,
    "log_mount_below_warning": logmount.below_warning,
    "rds_free_storage_ok": rds.storage_ok,
}
