"""Fault injectors: one small function per fault, given the running sandbox's published facts."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from sandbox.app_down_data import DEPLOYMENT, NAMESPACE, QA_IMAGE
from sandbox.drill import dns, logmount, orders, rds, replica


def _deployment_url(published: dict[str, Any]) -> str:
    return f"{published['app_down']['kubernetes']}/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{DEPLOYMENT}"


def deploy_qa_build(published: dict[str, Any]) -> str:
    """The outage of docs/app_down.md: the QA image deployed to shop/web by mistake (the same PATCH as its curl)."""
    body = {
        "metadata": {"annotations": {"kubernetes.io/change-cause": "deploy QA build"}},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": QA_IMAGE}]}}},
    }
    request = urllib.request.Request(
        _deployment_url(published),
        data=json.dumps(body).encode(),
        method="PATCH",
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()
    return f"deployed {QA_IMAGE} to {NAMESPACE}/{DEPLOYMENT}"


def single_5xx(published: dict[str, Any]) -> str:
    """One bad request to the demo app (a malformed order id): exactly one 500, nothing else wrong."""
    url = f"{published['app_down']['app']}/orders/not-a-number"
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            status = answer.status
    except urllib.error.HTTPError as err:
        status = err.code
    if status != 500:
        raise RuntimeError(f"the demo app answered {status} to the malformed order id, expected one 500")
    return f"one request to {NAMESPACE}/{DEPLOYMENT} answered 500 (malformed order id)"


INJECTORS: dict[str, Callable[[dict[str, Any]], str]] = {
    "deploy_qa_build": deploy_qa_build,
    "single_5xx": single_5xx,
    "stop_primary_dns": dns.stop_primary_dns,
    "pause_replica_replay": replica.pause_replica_replay,
    "stop_order_processor": orders.inject,
    "fill_log_mount": logmount.inject,
    "rds_bulk_load": rds.inject,
}

#: A scenario's optional ``restore``: brings the sandbox back to its healthy start state after the drill (a fault the
#: runbook does not undo by design, such as the stopped DNS server), and before the fault when the sandbox is not
#: healthy yet (the replica's own demo fault). Returns what it did.
RESTORERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "restore_dns_pair": dns.restore_dns_pair,
    "restore_replica": replica.restore_replica,
}
