"""Alert triage end to end (dag.test) for the trend check and the count-based known causes: a real Prometheus
holding series the test writes (timestamped up to 45 minutes back, relative to now), a real Alertmanager, the
Kubernetes emulator for the pods' logs, Slack to the sink.

Each test has its own service (label values), so the session's servers are shared and their state is not.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.kubernetes import KubernetesEmulatorServer
from sandbox.slack_sink import SlackSink
from toilless.common.config import include_path
from toilless.intake.models import Alert
from toilless.intake.routing import Route, build_conf
from toilless.sops.triage_alert import steps

from .test_dag import full_text, silences_for

pytestmark = pytest.mark.integration

DAG_ID = "triage_alert"
RUNBOOK = "alert_intake_selftest"
NAMESPACE = "payments"
MIB = 1 << 20
#: A memory rule scaled to what a test can write (Prometheus takes samples up to an hour old): read the last
#: 50 minutes every minute; rising 10 MiB/h or more for 20 minutes is a steady rise.
TEST_MEMORY_RULE = {
    "description": "memory, scaled down for the test",
    "query": 'round(sum(increase(test_oom_events_total{service="{{ labels.service }}"}[1h])))',
    "noise_at_most": 0,
    "silence_minutes": 60,
    "trend": {
        "query": 'sum(test_memory_bytes{service="{{ labels.service }}"})',
        "range_minutes": 50,
        "step_seconds": 60,
        "rising_per_hour_at_least": 10 * MIB,
        "steady_for_minutes": 20,
        "on_rising": "real",
        "on_flat": "noise",
        "unit": "bytes",
    },
}


def history(prometheus: Any, series: str, values: list[float]) -> None:
    """Write ``values`` one minute apart, the last one a minute ago, into Prometheus in one scrape.

    The exposition format allows a timestamp per sample, and one scrape may carry several samples of a series in
    time order: the exporter's value for ``series`` is the first sample, followed by the other lines.
    """
    now_ms = int(time.time() * 1000)
    stamps = [now_ms - (len(values) - index) * 60_000 for index in range(len(values))]
    lines = [f"{values[0]:.0f} {stamps[0]}"] + [
        f"{series} {v:.0f} {t}" for v, t in zip(values[1:], stamps[1:], strict=True)
    ]
    prometheus.exporter.values[series] = "\n".join(lines)  # type: ignore[assignment]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = prometheus.instant(f"count_over_time({series}[1h])")
        if found and int(found[0]["value"][1]) >= len(values):
            break
        time.sleep(0.2)
    else:
        raise TimeoutError(f"{series}: history not ingested")
    del prometheus.exporter.values[series]  # later scrapes would only repeat old samples


@pytest.fixture
def triage_env(
    prometheus_server: Any,
    alertmanager_server: Any,
    kubernetes_emulator: KubernetesEmulatorServer,
    slack_sink: SlackSink,
    set_connection: Callable[[str, dict[str, Any]], None],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> SlackSink:
    set_connection("prometheus_default", {"conn_type": "http", "host": prometheus_server.url})
    set_connection("alertmanager_default", {"conn_type": "http", "host": alertmanager_server.url})
    # The shipped rules plus the scaled-down memory rule, read where triage_alert reads its rules.
    shipped = yaml.safe_load(include_path("triage_rules.yaml").read_text(encoding="utf-8"))
    shipped["rules"]["test-memory"] = TEST_MEMORY_RULE
    rules_file = tmp_path / "triage_rules.yaml"
    rules_file.write_text(yaml.safe_dump(shipped), encoding="utf-8")
    monkeypatch.setattr(
        steps, "include_path", lambda *parts: rules_file if parts == ("triage_rules.yaml",) else include_path(*parts)
    )
    return slack_sink


def conf_for(service: str, rule: str, alertname: str, **extra: Any) -> dict[str, Any]:
    route = Route.parse(
        {
            "name": rule,
            "dag_id": RUNBOOK,
            "matchers": [f'alertname="{alertname}"'],
            "target": ["service"],
            "triage": rule,
        },
        0,
    )
    alert = Alert.model_validate(
        {
            "status": "firing",
            "labels": {"alertname": alertname, "service": service, "deployment": service, "namespace": NAMESPACE},
            "annotations": {"summary": f"{alertname} <!channel> {service}"},
            "startsAt": (datetime.now(UTC) - timedelta(minutes=3)).isoformat(),
            "fingerprint": uuid.uuid4().hex[:16],
        }
    )
    conf = build_conf(route, alert, "http://alertmanager.example:9093", dry_run=False)
    conf.update(extra)
    return conf


def runbook_started(run_id: str) -> bool:
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.query(DagRun).filter(DagRun.dag_id == RUNBOOK, DagRun.run_id == run_id).count() == 1


def service(name: str) -> str:
    return f"svc-{name}-{uuid.uuid4().hex[:6]}"


def add_pod_with_log(k8s: KubernetesEmulatorServer, name: str, log: str) -> None:
    labels = {"app": name}
    k8s.add_deployment(NAMESPACE, name, labels)
    k8s.add_pod(NAMESPACE, f"{name}-6c8b", labels, lambda: log)


def topic_errors(topic: str, times: int) -> list[str]:
    now = datetime.now(UTC)
    return [
        f"{(now - timedelta(minutes=2 + i)).strftime('%Y-%m-%dT%H:%M:%S.%fZ')} ERROR post failed: "
        f"topic {topic} does not exist"
        for i in range(times)
    ]


# -- trend: "has memory been rising for a long time, since when" -------------------------------------------------
def test_memory_rising_steadily_for_half_an_hour_is_real_and_says_since_when(
    run_dag: Callable[..., Any], triage_env: SlackSink, prometheus_server: Any, alertmanager_server: Any
) -> None:
    name = service("leak")
    # Flat at 500 MiB for 15 minutes, then +1 MiB a minute (60 MiB/h) for the last 30.
    values = [500.0 * MIB] * 15 + [500.0 * MIB + (i + 1) * MIB for i in range(30)]
    history(prometheus_server, f'test_memory_bytes{{service="{name}"}}', values)
    conf = conf_for(name, "test-memory", "MemoryHigh")
    run = run_dag(DAG_ID, run_conf=conf)
    assert run.state == "success"

    [message] = triage_env.messages("non_urgent")
    text = full_text(message)
    assert "real, runbook started" in text
    assert "steadily rising since" in text
    # Since when: 30 minutes ago, give or take the query's step.
    since = datetime.now(UTC) - timedelta(minutes=31)
    assert any((since + timedelta(minutes=delta)).strftime("%Y-%m-%d %H:%M UTC") in text for delta in range(-2, 3)), (
        text
    )
    assert "MiB/h" in text
    assert runbook_started(conf["triage"]["runbook_run_id"])
    assert silences_for(alertmanager_server, name) == []


def test_flat_memory_with_one_blip_is_noise_acknowledged_and_silenced(
    run_dag: Callable[..., Any], triage_env: SlackSink, prometheus_server: Any, alertmanager_server: Any
) -> None:
    name = service("blip")
    values = [500.0 * MIB] * 25 + [900.0 * MIB] + [500.0 * MIB] * 19
    history(prometheus_server, f'test_memory_bytes{{service="{name}"}}', values)
    conf = conf_for(name, "test-memory", "MemoryHigh")
    run = run_dag(DAG_ID, run_conf=conf)
    assert run.state == "success"

    [message] = triage_env.messages("non_urgent")
    text = full_text(message)
    assert "noise, acknowledged" in text
    assert "not a steady rise (flat: 500.0 MiB now" in text
    [silence] = silences_for(alertmanager_server, name)
    assert silence["status"]["state"] == "active"
    assert not runbook_started(conf["triage"]["runbook_run_id"])


# -- count-based known cause: "topic does not exist" once or twice vs many ----------------------------------------
def test_a_topic_error_seen_twice_is_dismissed_as_a_typo_and_nobody_else_is_told(
    run_dag: Callable[..., Any],
    triage_env: SlackSink,
    kubernetes_emulator: KubernetesEmulatorServer,
    alertmanager_server: Any,
    set_variable: Callable[[str, Any], None],
) -> None:
    name = service("typo")
    set_variable("toilless_triage_alert", {"topic_owners": {"orders-typo": "developers"}})
    add_pod_with_log(kubernetes_emulator, name, "\n".join(["INFO start", *topic_errors("orders-typo", 2), ""]))
    conf = conf_for(name, "service-5xx", "Service5xx")
    run = run_dag(DAG_ID, run_conf=conf)
    assert run.state == "success"

    [message] = triage_env.messages("non_urgent")
    text = full_text(message)
    assert "known cause, dismissed" in text
    assert "seen 2 time(s) in 60 min, under 5: dismissed" in text
    assert "a typo in a request" in text
    assert triage_env.messages("developers") == []
    assert triage_env.messages("infrastructure") == []
    assert not runbook_started(conf["triage"]["runbook_run_id"])
    assert silences_for(alertmanager_server, name) == []


def test_many_topic_errors_go_to_the_topics_owner_with_the_numbers_and_unknown_owners_are_named(
    run_dag: Callable[..., Any],
    triage_env: SlackSink,
    kubernetes_emulator: KubernetesEmulatorServer,
    set_variable: Callable[[str, Any], None],
) -> None:
    name = service("topics")
    set_variable("toilless_triage_alert", {"topic_owners": {"orders-v2": "developers"}})
    # Six recent errors for an owned topic, two for one nobody owns, and old ones outside the hour (not counted).
    old = (datetime.now(UTC) - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    log = [*topic_errors("orders-v2", 6), *topic_errors("mystery-topic", 2)]
    log += [f"{old} ERROR post failed: topic orders-v2 does not exist"] * 10
    add_pod_with_log(kubernetes_emulator, name, "\n".join(log) + "\n")
    conf = conf_for(name, "service-5xx", "Service5xx")
    run = run_dag(DAG_ID, run_conf=conf)
    assert run.state == "success"

    [message] = triage_env.messages("non_urgent")
    text = full_text(message)
    assert "known cause, owners told" in text
    assert "seen 8 times in 60 min, at least 5: the owners are told" in text
    assert "nobody is known to own: mystery-topic 2x" in text
    [owner] = triage_env.messages("developers")
    owner_text = full_text(owner)
    assert "orders-v2 6x" in owner_text
    assert "check the producer" in owner_text
    assert "mystery-topic" not in owner_text
    [unowned] = triage_env.messages("infrastructure")
    assert "owner unknown" in full_text(unowned)
    assert "mystery-topic 2x" in full_text(unowned)
    assert not runbook_started(conf["triage"]["runbook_run_id"])


def test_an_owner_map_with_a_channel_slack_does_not_know_fails_the_run_before_anything_is_told(
    run_dag: Callable[..., Any],
    triage_env: SlackSink,
    kubernetes_emulator: KubernetesEmulatorServer,
    alertmanager_server: Any,
    set_variable: Callable[[str, Any], None],
) -> None:
    name = service("badmap")
    set_variable("toilless_triage_alert", {"topic_owners": {"orders-v2": "#orders-team"}})
    add_pod_with_log(kubernetes_emulator, name, "\n".join(topic_errors("orders-v2", 9)) + "\n")
    conf = conf_for(name, "service-5xx", "Service5xx")
    run = run_dag(DAG_ID, run_conf=conf)
    assert run.state == "failed"

    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        states = {
            ti.task_id: ti.state
            for ti in session.query(TaskInstance).filter(
                TaskInstance.dag_id == DAG_ID, TaskInstance.run_id == run.run_id
            )
        }
    assert states["resolve_settings"] == "failed"
    assert triage_env.messages("developers") == []
    assert triage_env.messages("infrastructure") == []
    assert not runbook_started(conf["triage"]["runbook_run_id"])
    assert silences_for(alertmanager_server, name) == []
