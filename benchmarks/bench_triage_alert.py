"""triage_alert: triage decision time per alert with a real Prometheus (Debian package) and the Kubernetes emulator.

One decision = what the triage run does before acting: the rule's PromQL through PrometheusHook (one HTTP query to
the real Prometheus, 300 services' 5xx counters stored), the known cause's pod log and pod health from the
Kubernetes emulator when its pattern matches, and the verdict. Measured per alert over ALERTS alerts (a mix of noise,
burst and vault-token cases), p50 and p99. Silencing and starting the runbook are one HTTP call each and are not
part of the decision.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ALERTS = 300
SERVICES = 300
GOAL_P99_SECONDS = 0.5


def _namespace(index: int) -> str:
    # One namespace per service: the emulator ignores label selectors, a real API server does not.
    return f"bench-{index:04d}"


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def run(work: Path) -> list[dict[str, Any]]:
    from sandbox.kubernetes import KubernetesEmulatorServer
    from tests.fixtures.prometheus import PrometheusServer

    home = Path(tempfile.mkdtemp(prefix="bench-triage-", dir=work))
    prometheus = PrometheusServer(home).start()
    saved = {key: os.environ.get(key) for key in ("AIRFLOW_CONN_PROMETHEUS_DEFAULT", "AIRFLOW_CONN_KUBERNETES_DEFAULT")}
    try:
        with KubernetesEmulatorServer() as k8s:
            os.environ["AIRFLOW_CONN_PROMETHEUS_DEFAULT"] = json.dumps({"conn_type": "http", "host": prometheus.url})
            os.environ["AIRFLOW_CONN_KUBERNETES_DEFAULT"] = json.dumps(k8s.connection())
            services = [f"svc-{index:04d}" for index in range(SERVICES)]
            for index, service in enumerate(services):
                prometheus.exporter.values[f'http_requests_total{{service="{service}",code="500"}}'] = 0
                k8s.add_deployment(_namespace(index), service, {"app": service})
                log = "ERROR vault: permission denied: token expired\n" if index % 3 == 2 else "INFO ok\n"
                k8s.add_pod(_namespace(index), f"{service}-0", {"app": service}, lambda log=log: log)
                _make_ready(k8s, _namespace(index), f"{service}-0")
            prometheus.wait_for_scrapes('http_requests_total{service=~"svc-.*"}', samples=3, timeout=120)
            for index, service in enumerate(services):
                prometheus.exporter.values[f'http_requests_total{{service="{service}",code="500"}}'] = (
                    1 if index % 3 == 0 else 50
                )
            prometheus.wait_for_scrapes('http_requests_total{service=~"svc-.*"}', samples=8, timeout=120)
            timings, query_timings, verdicts = _decide_all(services)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        prometheus.stop()
        shutil.rmtree(home, ignore_errors=True)
    p50, p99 = statistics.median(timings), _percentile(timings, 0.99)
    counts = ", ".join(f"{count} {name}" for name, count in sorted(verdicts.items()))
    return [
        {
            "benchmark": "triage_alert",
            "metric": f"triage decision per alert, p50 / p99 ({ALERTS} alerts, real Prometheus, {SERVICES} services)",
            "value": f"{p50 * 1000:.0f} / {p99 * 1000:.0f} ms",
            "goal": f"p99 < {GOAL_P99_SECONDS * 1000:.0f} ms",
            "met": p99 < GOAL_P99_SECONDS,
            "notes": f"PromQL query + pod log and pod health (Kubernetes emulator) when the log matches + verdict; {counts}",
        },
        {
            "benchmark": "triage_alert",
            "metric": "of which the PromQL query through PrometheusHook, p50 / p99",
            "value": f"{statistics.median(query_timings) * 1000:.0f} / {_percentile(query_timings, 0.99) * 1000:.0f} ms",
            "goal": "-",
            "met": None,
            "notes": "the rest is the Kubernetes reads (a new KubernetesHook client per check) and the verdict",
        },
    ]


def _make_ready(k8s: Any, namespace: str, name: str) -> None:
    """The pod Running and Ready (the sandbox's pods carry only a phase): the vault-token case is then dismissed."""

    def update() -> None:
        pod = json.loads(json.dumps(k8s.emulator.objects["v1/pods", namespace, name].raw))
        pod["status"] = {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "app", "ready": True, "restartCount": 0, "image": "a", "imageID": "a"}],
        }
        k8s.emulator.objects["v1/pods", namespace, name] = pod

    k8s._call(update)


def _decide_all(services: list[str]) -> tuple[list[float], list[float], dict[str, int]]:
    from toilless.common.config import load_config
    from toilless.sops.triage_alert import steps

    config = load_config(steps.DAG_ID)
    query_timings: list[float] = []
    measured = steps.prometheus_query

    def timed_query(conn_id: str, expr: str) -> list[float]:
        started = time.perf_counter()
        try:
            return measured(conn_id, expr)
        finally:
            query_timings.append(time.perf_counter() - started)

    steps.prometheus_query = timed_query  # type: ignore[assignment]
    timings: list[float] = []
    verdicts: dict[str, int] = {}
    for index in range(ALERTS):
        service = services[index % len(services)]
        namespace = _namespace(index % len(services))
        labels = {"alertname": "Service5xx", "service": service, "deployment": service, "namespace": namespace}
        settings = {
            **config,
            "dry_run": True,
            "notes": [],
            "rule": "service-5xx",
            "alert": {"alertname": "Service5xx", "labels": labels},
            "triage": {"rule": "service-5xx", "runbook_dag_id": "service_error_rate", "runbook_run_id": "x"},
        }
        started = time.perf_counter()
        evidence = steps.gather_evidence(settings)
        verdict = steps.decide_verdict(settings, evidence)
        timings.append(time.perf_counter() - started)
        verdicts[verdict["verdict"]] = verdicts.get(verdict["verdict"], 0) + 1
    steps.prometheus_query = measured  # type: ignore[assignment]
    return timings, query_timings, verdicts


if __name__ == "__main__":
    for row in run(Path(tempfile.gettempdir())):
        print(row)
