"""Shared by the dns_failover tests: the SOP's settings for the dnsmasq pair, a runner, XCom and report helpers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox.dns_pair import RECORDS, DnsPair
from sandbox.slack_sink import SlackSink

REPO = Path(__file__).resolve().parents[3]
DAG_ID = "dns_failover"
SHUTDOWN_NS1 = ["-a", "shutdown", "-s", "ns1"]
FAILOVER_NS2 = ["-a", "failover", "-s", "ns2"]
FORCED_NS2 = ["-a", "failover", "-s", "ns2", "-f"]


def pair_settings(pair: DnsPair, **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "provider": "command",
        "command": {"argv": [str(pair.tool)], "timeout_seconds": 20},
        "servers": pair.servers_config(),
        "log": {"allowed_roots": [str(pair.home)], "max_lines": 20, "max_bytes": 65536},
        "queries": [{"name": name, "type": "A", "expect": [ip]} for name, ip in RECORDS.items()],
        "probe": {"tries": 2, "timeout_seconds": 0.3, "max_latency_ms": 250},
        "wait_minutes": 0.05,
        "poll_seconds": 0.3,
        "respect_maintenance_window": False,
        "gate": {"cooldown_minutes": 0, "circuit_breaker": {"max_actions": 100, "window_hours": 1}},
    }
    settings.update(overrides)
    return settings


@pytest.fixture
def dns_env(
    dns_pair: DnsPair, slack_sink: SlackSink, set_variable: Callable[[str, Any], None]
) -> Callable[..., DnsPair]:
    """Configure the SOP for the pair (the marker is per incident: each run here is its own incident)."""

    def configure(**overrides: Any) -> DnsPair:
        set_variable("toilless_dns_failover", pair_settings(dns_pair, **overrides))
        return dns_pair

    configure()
    return configure


@pytest.fixture
def run_failover(airflow_db: Path) -> Callable[..., Any]:
    """dag.test() of this DAG, parsed from its own file; returns (run, {task_id: xcom})."""

    def _run(run_conf: dict[str, Any] | None = None) -> Any:
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(REPO / "dags" / f"{DAG_ID}.py"))
        assert not bag.import_errors, bag.import_errors
        conf = {"alert": alert()} if run_conf is None else run_conf
        return bag.get_dag(DAG_ID).test(run_conf=conf)

    return _run


def alert(fingerprint: str | None = None) -> dict[str, Any]:
    return {
        "alertname": "DNSServerNotAnswering",
        "status": "firing",
        "labels": {"alertname": "DNSServerNotAnswering", "instance": "ns1"},
        "annotations": {},
        "startsAt": "2026-01-01T00:00:00Z",
        "fingerprint": fingerprint or uuid.uuid4().hex[:16],
    }


def xcom(run: Any, task_id: str) -> Any:
    [ti] = [ti for ti in run.get_task_instances() if ti.task_id == task_id]
    return ti.xcom_pull(task_ids=task_id), ti.state


def report_text(sink: SlackSink, channel: str = "networking") -> str:
    messages = sink.messages(channel)
    assert messages, f"nothing posted to {channel}: {sink.messages()}"
    return messages[-1]["text"]


def actions(pair: DnsPair) -> list[list[str]]:
    return [call for call in pair.calls() if call[:1] == ["-a"]]
