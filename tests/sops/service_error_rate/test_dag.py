"""service_error_rate end to end (dag.test): a real Prometheus scraping an exporter the test drives (request counters
and latency histograms per pod), the Kubernetes emulator (kmock) with the Deployment, its ReplicaSet and pods, a real
PostgreSQL and Redis as the service's dependencies, and the Slack sink.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from sandbox.kubernetes import KubernetesEmulatorServer
from sandbox.ports import HOST, free_port
from sandbox.slack_sink import SlackSink
from tests.fixtures.prometheus import PrometheusServer
from tests.sops.service_error_rate.scenario import (
    DEPLOYMENT,
    QUERIES,
    Cluster,
    Controller,
    PodTraffic,
    Traffic,
    new_namespace,
    pod_name,
    wait_for_profile,
    wait_for_series,
)

pytestmark = pytest.mark.integration

DAG_ID = "service_error_rate"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


@dataclass
class Service:
    namespace: str
    cluster: Cluster
    traffic: Traffic
    sink: SlackSink
    prometheus: PrometheusServer
    settings: dict[str, Any]
    set_variable: Callable[[str, Any], None]
    set_connection: Callable[[str, dict[str, Any]], None]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{DEPLOYMENT}"

    def configure(self, **overrides: Any) -> None:
        settings = copy.deepcopy(self.settings)
        for key, value in overrides.items():
            if key == "service":
                settings["services"][self.key].update(value)
            else:
                settings[key] = value
        self.set_variable(f"toilless_{DAG_ID}", settings)

    def pods(self, count: int, traffic: PodTraffic, **pod: Any) -> dict[str, PodTraffic]:
        names = [pod_name(self.cluster.replica_set, index) for index in range(count)]
        for name in names:
            self.cluster.add_pod(name, **pod)
        return {name: traffic for name in names}

    def serve(self, profile: dict[str, PodTraffic]) -> None:
        self.traffic.set(profile)
        wait_for_series(self.prometheus, self.namespace, len(profile))
        wait_for_profile(self.prometheus, self.namespace, profile)

    def texts(self, channel: str | None = None) -> list[str]:
        return [message["text"] for message in self.sink.messages(channel)]


@pytest.fixture(scope="module")
def dependencies_db(postgres_server: Any) -> Any:
    postgres_server.create_database("service_deps")
    return postgres_server


@pytest.fixture
def service(
    prometheus_server: PrometheusServer,
    kubernetes_emulator: KubernetesEmulatorServer,
    dependencies_db: Any,
    redis_server: Any,
    slack_sink: SlackSink,
    set_variable: Callable[[str, Any], None],
    set_connection: Callable[[str, dict[str, Any]], None],
) -> Iterator[Service]:
    namespace = new_namespace()
    set_connection("prometheus_default", {"conn_type": "http", "host": prometheus_server.url})
    set_connection("deps_pg", dependencies_db.airflow_connection("service_deps"))
    set_connection("deps_redis", redis_server.airflow_connection())
    key = f"{namespace}/{DEPLOYMENT}"
    settings = {
        "services": {
            key: {
                "owner_channel": "developers",
                "min_replicas": 2,
                "max_replicas": 3,
                "dependencies": [
                    {"name": "orders database", "kind": "postgres", "conn_id": "deps_pg"},
                    {"name": "session cache", "kind": "redis", "conn_id": "deps_redis"},
                ],
            }
        },
        "default_service": key,
        "queries": QUERIES,
        "prometheus": {"conn_id": "prometheus_default", "timeout_seconds": 10, "window_minutes": 1},
        "min_errors": 5,
        "min_requests": 20,
        "respect_maintenance_window": False,
        "verify": {"settle_seconds": 1.5, "window_seconds": 3, "timeout_minutes": 0.5, "poll_seconds": 10},
    }
    traffic = Traffic(prometheus_server.exporter, namespace).start()
    env = Service(
        namespace=namespace,
        cluster=Cluster(kubernetes_emulator, namespace, replicas=2),
        traffic=traffic,
        sink=slack_sink,
        prometheus=prometheus_server,
        settings=settings,
        set_variable=set_variable,
        set_connection=set_connection,
    )
    env.configure()
    yield env
    traffic.stop()


HEALTHY = PodTraffic(rps=20, error_share=0.0, latency_seconds=0.03, saturation=0.2)
ERRORING = PodTraffic(rps=20, error_share=0.3, latency_seconds=0.03, saturation=0.2)
SATURATED = PodTraffic(rps=20, error_share=0.0, latency_seconds=0.7, saturation=0.95)


def _new_pods(service: Service, count: int) -> dict[str, PodTraffic]:
    return {f"{DEPLOYMENT}-7b9c6d5f8-n{index:04d}": HEALTHY for index in range(count)}


def test_one_error_is_acknowledged_and_left(run_dag: Callable[..., Any], service: Service) -> None:
    profile = service.pods(2, PodTraffic(rps=20, error_share=0.002))
    service.serve(profile)
    assert run_dag(DAG_ID).state == "success"
    assert service.cluster.patches() == []
    [text] = service.texts("ops")
    assert "noise" in text
    assert "acknowledged and left" in text
    assert service.texts("developers") == []


def test_crash_looping_pods_restart_their_deployment_and_recovery_is_verified(
    run_dag: Callable[..., Any], service: Service
) -> None:
    profile = service.pods(1, ERRORING)
    crashing = pod_name(service.cluster.replica_set, 1)
    service.cluster.add_pod(crashing, ready=False, waiting="CrashLoopBackOff", restarts=6)
    profile[crashing] = ERRORING
    service.serve(profile)
    controller = Controller(service.cluster, service.traffic, _new_pods(service, 2)).start()
    try:
        assert run_dag(DAG_ID).state == "success"
    finally:
        controller.stop()
    [restart] = service.cluster.restarts()
    # kubectl rollout restart's patch (plus the incident and history, written in the same patch).
    annotations = restart["spec"]["template"]["metadata"]["annotations"]
    assert set(annotations) == {
        RESTARTED_AT,
        "toilless.io/service-error-rate-restart-incident",
        "toilless.io/service-error-rate-restart-history",
    }
    assert list(restart) == ["spec"]
    assert service.cluster.scale_patches() == []
    [text] = service.texts("ops")
    assert "failing" in text
    assert "CrashLoopBackOff" in text
    assert "Action: rollout restart" in text
    assert "Verification (same PromQL since the action): recovered" in text
    assert service.texts("urgent") == []


def test_a_restart_that_does_not_help_is_escalated(run_dag: Callable[..., Any], service: Service) -> None:
    """No controller replaces the pods: the same PromQL after the restart still shows the errors."""
    service.configure(verify={"settle_seconds": 1, "window_seconds": 3, "timeout_minutes": 0.05, "poll_seconds": 10})
    profile = service.pods(1, ERRORING)
    crashing = pod_name(service.cluster.replica_set, 1)
    service.cluster.add_pod(crashing, ready=False, waiting="CrashLoopBackOff", restarts=6)
    profile[crashing] = ERRORING
    service.serve(profile)
    assert run_dag(DAG_ID).state == "success"
    assert len(service.cluster.restarts()) == 1
    [urgent] = service.texts("urgent")
    assert "not recovered" in urgent
    assert service.texts("developers")  # the owners hear it too


def test_saturated_pods_scale_within_bounds_and_not_again_inside_the_cool_down(
    run_dag: Callable[..., Any], service: Service
) -> None:
    service.serve(service.pods(2, SATURATED))
    controller = Controller(service.cluster, service.traffic, _new_pods(service, 3)).start()
    try:
        assert run_dag(DAG_ID, run_conf={"allow_restart": False}).state == "success"
    finally:
        controller.stop()
    assert service.cluster.scale_patches() == [{"spec": {"replicas": 3}}]
    assert service.cluster.deployment()["spec"]["replicas"] == 3
    assert "scaled " in service.texts("ops")[0]
    service.sink.clear()
    # Still saturated: the three pods the scale-up made (the controller's) saturate too; the cap is 3, so the next run
    # reports instead of scaling past max_replicas. (Serving three other pods left the new ones' clean series inside
    # the query window for a timing-dependent while: a median over five or six pods read "noise".)
    service.serve({name: SATURATED for name in _new_pods(service, 3)})
    assert run_dag(DAG_ID).state == "success"
    assert len(service.cluster.scale_patches()) == 1
    assert "already at max_replicas 3" in service.texts("ops")[0]


def test_scale_cool_down_holds_for_a_new_incident(run_dag: Callable[..., Any], service: Service) -> None:
    service.configure(service={"max_replicas": 5})
    service.serve(service.pods(2, SATURATED))
    controller = Controller(service.cluster, service.traffic, _new_pods(service, 3)).start()
    try:
        assert run_dag(DAG_ID).state == "success"
    finally:
        controller.stop()
    assert len(service.cluster.scale_patches()) == 1
    assert "Verification (same PromQL since the action): recovered" in service.texts("ops")[0]
    # Saturated again: the pods the scale-up made saturate too.
    service.serve({name: SATURATED for name in _new_pods(service, 3)})
    service.sink.clear()
    assert run_dag(DAG_ID).state == "success"  # a new run: a new incident, inside scale.cooldown_minutes
    assert len(service.cluster.scale_patches()) == 1
    [text] = service.texts("ops")
    assert "Action not taken: cool-down" in text


@pytest.mark.parametrize(
    "run_conf",
    [pytest.param({"dry_run": True}, id="dry-run"), pytest.param({"allow_restart": False}, id="restart-off")],
)
def test_dry_run_and_switched_off_change_nothing(
    run_dag: Callable[..., Any], service: Service, run_conf: dict[str, Any]
) -> None:
    profile = service.pods(1, ERRORING)
    crashing = pod_name(service.cluster.replica_set, 1)
    service.cluster.add_pod(crashing, ready=False, waiting="CrashLoopBackOff", restarts=6)
    profile[crashing] = ERRORING
    service.serve(profile)
    assert run_dag(DAG_ID, run_conf=run_conf).state == "success"
    assert service.cluster.patches() == []
    assert service.cluster.scale_patches() == []
    text = " ".join(service.texts())
    assert "dry run" in text or "switched off" in text
    assert service.texts("urgent")  # failing and not fixed: escalated


def test_maintenance_window_changes_nothing(run_dag: Callable[..., Any], service: Service) -> None:
    service.configure(respect_maintenance_window=True)
    service.serve(service.pods(2, SATURATED))
    now = datetime.now(UTC)
    sunday_3am = (now + timedelta(days=(6 - now.weekday()) % 7 or 7)).replace(hour=3, minute=0, second=0)
    with time_machine.travel(sunday_3am, tick=True):
        assert run_dag(DAG_ID).state == "success"
    assert service.cluster.scale_patches() == []
    assert "maintenance window" in service.texts("ops")[0]


def test_a_failed_dependency_is_reported_not_restarted(run_dag: Callable[..., Any], service: Service) -> None:
    service.set_connection("deps_redis", {"conn_type": "redis", "host": HOST, "port": free_port()})
    profile = service.pods(1, ERRORING)
    crashing = pod_name(service.cluster.replica_set, 1)
    service.cluster.add_pod(crashing, ready=False, waiting="CrashLoopBackOff", restarts=6)
    profile[crashing] = ERRORING
    service.serve(profile)
    assert run_dag(DAG_ID).state == "success"
    assert service.cluster.patches() == []
    [owner] = service.texts("developers")
    assert "dependency session cache failed" in owner
    assert "Dependency orders database (postgres): ok" in owner


def test_errors_from_healthy_pods_go_to_the_owners(run_dag: Callable[..., Any], service: Service) -> None:
    service.serve(service.pods(2, ERRORING))
    assert run_dag(DAG_ID).state == "success"
    assert service.cluster.patches() == []
    [owner] = service.texts("developers")
    assert "owning team must look" in owner
    assert pod_name(service.cluster.replica_set, 0) in owner


def _settings_and_decision(service: Service, action: str, **decision: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    from toilless.sops.service_error_rate import steps

    settings = steps.resolve_settings({}, {"run_id": "manual__retried"})
    return settings, {"action": action, **decision}


def test_a_retried_restart_never_acts_twice(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    """The restart patch landed but its answer was lost (the task fails and is retried): the retry re-reads the
    Deployment, finds this incident recorded by the patch itself, and does not restart again."""
    from toilless.hooks.kubernetes import KubernetesWorkloadHook
    from toilless.sops.service_error_rate import steps

    settings, decision = _settings_and_decision(service, "restart")
    original = KubernetesWorkloadHook.restart_deployment

    def restart_then_lose_the_answer(self: Any, *args: Any, **kwargs: Any) -> Any:
        original(self, *args, **kwargs)
        raise ConnectionError("answer lost after the patch was applied")

    monkeypatch.setattr(KubernetesWorkloadHook, "restart_deployment", restart_then_lose_the_answer)
    with pytest.raises(ConnectionError):
        steps.act(settings, decision)
    retried = steps.act(settings, decision)
    assert len(service.cluster.restarts()) == 1
    assert retried["acted"] is False
    assert retried["already_done"] is True
    assert "already acted" in retried["reason"]


def test_a_retried_scale_never_scales_twice(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    """Crash between the scale and its marker: the retry finds the replicas at the target and only records."""
    from toilless.hooks.kubernetes import KubernetesWorkloadHook
    from toilless.sops.service_error_rate import steps

    settings, decision = _settings_and_decision(service, "scale", to_replicas=3, from_replicas=2)
    original = KubernetesWorkloadHook.patch_deployment

    def worker_dies(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("worker died before the marker")

    monkeypatch.setattr(KubernetesWorkloadHook, "patch_deployment", worker_dies)
    with pytest.raises(ConnectionError):
        steps.act(settings, decision)
    monkeypatch.setattr(KubernetesWorkloadHook, "patch_deployment", original)
    retried = steps.act(settings, decision)
    assert service.cluster.scale_patches() == [{"spec": {"replicas": 3}}]
    assert retried["already_done"] is True
    assert "not scaled again" in retried["reason"]
    annotations = service.cluster.deployment()["metadata"]["annotations"]
    assert annotations["toilless.io/service-error-rate-scale-incident"] == "run:manual__retried"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"queries": {**QUERIES, "errors": "sum(rate(x[5m])"}}, "never closed", id="unbalanced-promql"),
        pytest.param(
            {"queries": {**QUERIES, "errors": "sum by (pod) (rate(x[$window])) ++ nonsense()"}},
            "parse error",
            id="promql-prometheus-refuses",
        ),
    ],
)
def test_malformed_promql_fails_clearly_and_changes_nothing(
    run_dag: Callable[..., Any], service: Service, change: dict[str, Any], message: str
) -> None:
    service.serve(service.pods(2, ERRORING))
    service.configure(**change)
    run = run_dag(DAG_ID)
    assert run.state == "failed"
    assert service.cluster.patches() == []
    failures = " ".join(service.texts())
    assert message in failures
    assert "not retried" in failures


def test_unknown_deployment_fails_clearly_and_changes_nothing(run_dag: Callable[..., Any], service: Service) -> None:
    service.serve(service.pods(2, ERRORING))
    other = new_namespace()
    settings = copy.deepcopy(service.settings)
    settings["services"][f"{other}/{DEPLOYMENT}"] = settings["services"][service.key]
    service.set_variable(f"toilless_{DAG_ID}", settings)
    run = run_dag(DAG_ID, run_conf={"namespace": other, "deployment": DEPLOYMENT})
    assert run.state == "failed"
    assert service.cluster.patches() == []
    assert "does not exist" in " ".join(service.texts())


def test_unlisted_service_is_refused_before_anything_is_read(run_dag: Callable[..., Any], service: Service) -> None:
    run = run_dag(DAG_ID, run_conf={"namespace": service.namespace, "deployment": "payments"})
    assert run.state == "failed"
    assert "not a configured service" in " ".join(service.texts())
