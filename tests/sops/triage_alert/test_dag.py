"""Alert triage end to end (dag.test): a real Prometheus with series the test writes, a real Alertmanager whose
silences are checked through its API, the Kubernetes emulator for the vault-token case, Slack to the sink.

Each test has its own service (label values), so the session's servers are shared and their state is not.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sandbox.kubernetes import KubernetesEmulatorServer
from sandbox.slack_sink import SlackSink
from toilless.intake.models import Alert
from toilless.intake.routing import Route, build_conf

pytestmark = pytest.mark.integration

DAG_ID = "triage_alert"
#: A runbook that changes nothing (the intake's self-test), so "real" can start it for real.
RUNBOOK = "alert_intake_selftest"
NAMESPACE = "payments"
VAULT_ERROR = "ERROR vault: permission denied: token expired (403) while reading secret/data/checkout"


@dataclass
class Scenario:
    service: str
    errors: int


@pytest.fixture(scope="module")
def scenarios(prometheus_server: Any) -> dict[str, Scenario]:
    """5xx counters for every scenario of this module, written at once so they share one wait for scrapes."""
    wanted = {
        "noise": 1,
        "burst": 60,
        "vault_healthy": 40,
        "vault_unhealthy": 40,
        "over_max": 1,
        "dry_run": 1,
        "twice": 60,
    }
    found = {name: Scenario(f"svc-{name.replace('_', '-')}-{uuid.uuid4().hex[:6]}", n) for name, n in wanted.items()}
    exporter = prometheus_server.exporter
    for scenario in found.values():
        exporter.values[f'http_requests_total{{service="{scenario.service}",code="500"}}'] = 0
    prometheus_server.wait_for_scrapes('http_requests_total{service=~"svc-.*"}', samples=3)
    for scenario in found.values():
        exporter.values[f'http_requests_total{{service="{scenario.service}",code="500"}}'] = scenario.errors
    # Enough samples after the step that increase()'s extrapolation stays small (1 error reads at most ~1.2).
    prometheus_server.wait_for_scrapes('http_requests_total{service=~"svc-.*"}', samples=9)
    return found


@pytest.fixture
def triage_env(
    prometheus_server: Any,
    alertmanager_server: Any,
    kubernetes_emulator: KubernetesEmulatorServer,
    slack_sink: SlackSink,
    set_connection: Callable[[str, dict[str, Any]], None],
) -> SlackSink:
    set_connection("prometheus_default", {"conn_type": "http", "host": prometheus_server.url})
    set_connection("alertmanager_default", {"conn_type": "http", "host": alertmanager_server.url})
    return slack_sink


def route() -> Route:
    return Route.parse(
        {
            "name": "service-5xx",
            "dag_id": RUNBOOK,
            "matchers": ['alertname="Service5xx"'],
            "target": ["service"],
            "triage": "service-5xx",
        },
        0,
    )


def alert_for(service: str) -> Alert:
    return Alert.model_validate(
        {
            "status": "firing",
            "labels": {
                "alertname": "Service5xx",
                "service": service,
                "deployment": service,
                "namespace": NAMESPACE,
                "severity": "warning",
            },
            "annotations": {"summary": "5xx from <!channel> " + service},
            "startsAt": (datetime.now(UTC) - timedelta(minutes=3)).isoformat(),
            "fingerprint": uuid.uuid4().hex[:16],
        }
    )


def conf_for(service: str, **extra: Any) -> dict[str, Any]:
    """The conf the intake gives triage_alert for this alert (the intake's own routing code builds it)."""
    conf = build_conf(route(), alert_for(service), "http://alertmanager.example:9093", dry_run=False)
    conf.update(extra)
    return conf


def full_text(message: dict[str, Any]) -> str:
    """The message as shown: every block's text (the fallback ``text`` is cut shorter)."""
    parts = [message.get("text", "")]
    for block in message.get("blocks") or []:
        text = block.get("text")
        parts.append(text.get("text", "") if isinstance(text, dict) else "")
        parts.extend(e.get("text", "") for e in block.get("elements") or [] if isinstance(e, dict))
    return "\n".join(parts)


def silences_for(alertmanager_server: Any, service: str) -> list[dict[str, Any]]:
    return [
        s
        for s in alertmanager_server.silences()
        if any(m["name"] == "service" and m["value"] == service for m in s["matchers"])
    ]


def runbook_run(run_id: str) -> Any:
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        found = session.query(DagRun).filter(DagRun.dag_id == RUNBOOK, DagRun.run_id == run_id).one_or_none()
        return None if found is None else (found.run_id, found.conf)


def add_service_pods(k8s: KubernetesEmulatorServer, service: str, *, ready: bool, restarts: int = 0) -> None:
    labels = {"app": service}
    k8s.add_deployment(NAMESPACE, service, labels)
    k8s.add_pod(NAMESPACE, f"{service}-7d9f", labels, lambda: f"INFO start\n{VAULT_ERROR}\nINFO request done\n")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{service}-7d9f",
            "namespace": NAMESPACE,
            "labels": labels,
            "creationTimestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [
                {"name": "app", "ready": ready, "restartCount": restarts, "image": "app:1", "imageID": "x"}
            ],
        },
    }
    k8s._call(lambda: k8s.emulator.objects.__setitem__(("v1/pods", NAMESPACE, f"{service}-7d9f"), pod))


def test_one_5xx_in_the_last_hour_is_noise_acknowledged_and_silenced_without_a_run(
    run_dag: Callable[..., Any], triage_env: SlackSink, scenarios: dict[str, Scenario], alertmanager_server: Any
) -> None:
    service = scenarios["noise"].service
    conf = conf_for(service)
    run = run_dag(DAG_ID, run_conf=conf)
    assert run.state == "success"

    [message] = triage_env.messages("non_urgent")
    assert "noise, acknowledged" in full_text(message)
    assert "how widespread: 1 (noise at most 1)" in full_text(message)
    [silence] = silences_for(alertmanager_server, service)
    assert silence["status"]["state"] == "active"
    assert silence["createdBy"] == "toilless"
    assert "noise" in silence["comment"]
    labels = conf["alert"]["labels"]
    assert {(m["name"], m["value"], m["isRegex"], m["isEqual"]) for m in silence["matchers"]} == {
        (name, value, False, True) for name, value in labels.items()
    }
    ends = datetime.fromisoformat(silence["endsAt"].replace("Z", "+00:00"))
    assert timedelta(minutes=58) < ends - datetime.now(UTC) <= timedelta(minutes=60)
    assert silence["id"] in full_text(message)
    assert runbook_run(conf["triage"]["runbook_run_id"]) is None


def test_a_burst_starts_the_runbook_once_with_the_intakes_run_id(
    run_dag: Callable[..., Any], triage_env: SlackSink, scenarios: dict[str, Scenario], alertmanager_server: Any
) -> None:
    service = scenarios["burst"].service
    conf = conf_for(service)
    run = run_dag(DAG_ID, run_conf=conf)
    assert run.state == "success"

    [message] = triage_env.messages("non_urgent")
    assert "real, runbook started" in full_text(message)
    assert "more than 1: real" in full_text(message)
    started = runbook_run(conf["triage"]["runbook_run_id"])
    assert started is not None
    assert started[1]["alert"]["labels"]["service"] == service
    assert silences_for(alertmanager_server, service) == []


def test_vault_token_error_with_healthy_pods_is_dismissed_with_the_refresh_note(
    run_dag: Callable[..., Any],
    triage_env: SlackSink,
    scenarios: dict[str, Scenario],
    kubernetes_emulator: KubernetesEmulatorServer,
    alertmanager_server: Any,
) -> None:
    service = scenarios["vault_healthy"].service
    add_service_pods(kubernetes_emulator, service, ready=True)
    conf = conf_for(service)
    run = run_dag(DAG_ID, run_conf=conf)
    assert run.state == "success"

    [message] = triage_env.messages("non_urgent")
    assert "known cause, dismissed" in full_text(message)
    assert "refresh the service's Vault token" in full_text(message)
    [owner] = triage_env.messages("infrastructure")
    assert "vault-token-expired" in full_text(owner)
    assert "refresh the service" in full_text(owner)
    assert runbook_run(conf["triage"]["runbook_run_id"]) is None
    assert silences_for(alertmanager_server, service) == []


def test_vault_token_error_with_unhealthy_pods_is_not_dismissed(
    run_dag: Callable[..., Any],
    triage_env: SlackSink,
    scenarios: dict[str, Scenario],
    kubernetes_emulator: KubernetesEmulatorServer,
) -> None:
    service = scenarios["vault_unhealthy"].service
    add_service_pods(kubernetes_emulator, service, ready=False, restarts=7)
    conf = conf_for(service)
    run = run_dag(DAG_ID, run_conf=conf)
    assert run.state == "success"

    [message] = triage_env.messages("non_urgent")
    assert "real, runbook started" in full_text(message)
    assert "pods are not healthy: not dismissed" in full_text(message)
    assert "not Ready" in full_text(message)
    assert triage_env.messages("infrastructure") == []
    assert runbook_run(conf["triage"]["runbook_run_id"]) is not None


def test_a_silence_over_the_configured_maximum_fails_clearly_and_silences_nothing(
    run_dag: Callable[..., Any],
    triage_env: SlackSink,
    scenarios: dict[str, Scenario],
    alertmanager_server: Any,
    set_variable: Callable[[str, Any], None],
) -> None:
    service = scenarios["over_max"].service
    set_variable("toilless_triage_alert", {"max_silence_minutes": 30})  # the rule asks for 60
    run = run_dag(DAG_ID, run_conf=conf_for(service))
    assert run.state == "failed"

    texts = [full_text(m) for m in triage_env.messages()]
    assert any("NOT silenced" in text and "over the configured maximum of 30 minutes" in text for text in texts)
    assert silences_for(alertmanager_server, service) == []


def test_dry_run_silences_nothing_and_says_so(
    run_dag: Callable[..., Any], triage_env: SlackSink, scenarios: dict[str, Scenario], alertmanager_server: Any
) -> None:
    service = scenarios["dry_run"].service
    run = run_dag(DAG_ID, run_conf=conf_for(service, dry_run=True))
    assert run.state == "success"

    [message] = triage_env.messages("non_urgent")
    assert "dry run: nothing was changed" in full_text(message)
    assert "not silenced: dry run" in full_text(message)
    assert silences_for(alertmanager_server, service) == []


def test_a_second_triage_of_the_same_alert_does_not_start_the_runbook_again(
    run_dag: Callable[..., Any], triage_env: SlackSink, scenarios: dict[str, Scenario]
) -> None:
    from airflow.models import DagRun, TaskInstance
    from airflow.utils.session import create_session

    conf = conf_for(scenarios["twice"].service)
    first = run_dag(DAG_ID, run_conf=conf)
    second = run_dag(DAG_ID, run_conf=conf)  # as a retried start_runbook meets the run: the same run id

    assert (first.state, second.state) == ("success", "success")
    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.run_id == conf["triage"]["runbook_run_id"]).all()
        states = {
            ti.run_id: ti.state
            for ti in session.query(TaskInstance).filter(
                TaskInstance.dag_id == DAG_ID,
                TaskInstance.task_id == "start_runbook",
                TaskInstance.run_id.in_([first.run_id, second.run_id]),
            )
        }
    assert [run.dag_id for run in runs] == [RUNBOOK]
    assert (states[first.run_id], states[second.run_id]) == ("success", "skipped")
