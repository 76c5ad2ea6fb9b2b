"""service_error_rate: PromQL evaluation time for 100 pods, on a real Prometheus (Debian package).

One Deployment of 100 pods serving traffic into an exporter (request counters by code, a latency histogram of 7
buckets, a saturation gauge), scraped every second. Timed: the SOP's four queries (requests, 5xx, p95 latency,
saturation) rendered from the shipped configuration's shapes and sent through ``toilless.hooks.prometheus``
exactly as ``measure_errors`` does, then merged per pod and judged. The window is the shipped one (1 h): the
queries cover it even though the series are younger.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

PODS = 100
ROUNDS = 20
GOAL_SECONDS = 1.0


def run(work: Path) -> list[dict[str, Any]]:
    import json
    import os

    from tests.fixtures.prometheus import PROMETHEUS, PrometheusServer
    from tests.sops.service_error_rate.scenario import QUERIES, PodTraffic, Traffic, wait_for_series
    from toilless.hooks.prometheus import PrometheusHook
    from toilless.sops.service_error_rate import evidence, verdict
    from toilless.sops.service_error_rate.settings import render_queries

    if not PROMETHEUS:
        return [_row("PromQL for 100 pods", "n/a", None, "Debian package prometheus is not installed")]
    directory = Path(tempfile.mkdtemp(prefix="bench-prometheus-", dir=work))
    server = PrometheusServer(directory).start()
    namespace = "bench"
    traffic = Traffic(server.exporter, namespace).start()
    try:
        profile = {
            f"web-5d8f7c9b4-p{index:04d}": PodTraffic(
                rps=20, error_share=0.01 * (index % 7), latency_seconds=0.02 * (1 + index % 30), saturation=0.5
            )
            for index in range(PODS)
        }
        traffic.set(profile)
        wait_for_series(server, namespace, PODS, timeout=60)
        time.sleep(3)  # a few more scrapes: rate() over several samples, as in production
        os.environ["AIRFLOW_CONN_BENCH_PROMETHEUS"] = json.dumps({"conn_type": "http", "host": server.url})
        hook = PrometheusHook(prometheus_conn_id="bench_prometheus", timeout_seconds=30)
        rendered = render_queries(QUERIES, namespace, "web", 3600)
        durations = []
        pods_seen = 0
        for _ in range(ROUNDS):
            started = time.perf_counter()
            answers = {name: hook.query(expr).by_label("pod") for name, expr in rendered.items()}
            metrics = evidence.per_pod_metrics(answers)
            verdict.measure_spread(metrics, verdict.Thresholds())
            durations.append(time.perf_counter() - started)
            pods_seen = len(metrics)
        median = statistics.median(durations)
        worst = max(durations)
        return [
            _row(
                f"PromQL evaluation for {PODS} pods (4 queries, 1 h window), median of {ROUNDS}",
                f"{median * 1000:.0f} ms",
                median < GOAL_SECONDS,
                f"max {worst * 1000:.0f} ms; {pods_seen} pods in the answer; real Prometheus, HTTP API through the hook",
            )
        ]
    finally:
        traffic.stop()
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _row(metric: str, value: str, met: bool | None, notes: str) -> dict[str, Any]:
    return {
        "benchmark": "service_error_rate",
        "metric": metric,
        "value": value,
        "goal": f"< {GOAL_SECONDS:g} s",
        "met": met,
        "notes": notes,
    }


if __name__ == "__main__":
    for row in run(Path(tempfile.gettempdir())):
        print(row)
