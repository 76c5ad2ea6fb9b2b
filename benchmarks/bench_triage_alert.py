"""triage_alert: triage decision time per alert with a real Prometheus (Debian package) and the Kubernetes emulator;
and the alert intake's storm figures with triage on, on a running Airflow.

One decision = what the triage run does before acting: the rule's PromQL through PrometheusHook (one HTTP query to
the real Prometheus, 300 services' 5xx counters stored), the known cause's pod log and pod health from the
Kubernetes emulator when its pattern matches, and the verdict. Measured per alert over ALERTS alerts (a mix of noise,
burst and vault-token cases), p50 and p99. Silencing and starting the runbook are one HTTP call each and are not
part of the decision.

Storm with triage on (:func:`storm_with_triage`): the sandbox Airflow (``python -m sandbox run``, as ``make run``
starts it, SQLite) with its own real Prometheus and Alertmanager (Debian packages), which the triage runs query and
silence in; the bench's exporter is one more scrape target of that Prometheus. STORM_ALERTS alerts for STORM_TARGETS services of the ``service-5xx-triage`` route
are POSTed to the intake in Alertmanager's webhook format (groups of 50, over STORM_SECONDS; per service the firing
alert 6 times and 4 other alerts, as the intake's own storm), while the triage runs they start execute. One service
in ten has a burst of 5xx in Prometheus (real: the runbook starts), the rest none (noise: silenced in the real
Alertmanager). Figures: alerts accepted, targets lost (no triage run), 5xx, triage runs, decisions per minute, and
verdict latency: from the first POST carrying a service's alert to its run's ``decide_verdict`` task ending.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ALERTS = 300
SERVICES = 300
GOAL_P99_SECONDS = 0.5
#: The storm's size; TOILLESS_BENCH_TRIAGE_STORM_TARGETS scales it down on a busy machine (10 alerts a service).
STORM_TARGETS = int(os.environ.get("TOILLESS_BENCH_TRIAGE_STORM_TARGETS", "100"))
STORM_ALERTS = 10 * STORM_TARGETS
STORM_SECONDS = 60.0
ALERTS_PER_DELIVERY = 50
#: One service in this many has a 5xx burst (a real verdict); the others have none (noise).
BURST_EVERY = 10
#: How long the triage runs may take to finish after the storm, at most.
TRIAGE_DRAIN_SECONDS = 1_500.0


def _namespace(index: int) -> str:
    # One namespace per service: the emulator ignores label selectors, a real API server does not.
    return f"bench-{index:04d}"


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def run(work: Path) -> list[dict[str, Any]]:
    return decision_time(work) + storm_with_triage(work)


def decision_time(work: Path) -> list[dict[str, Any]]:
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


# -- the intake's storm with triage on --------------------------------------------------------------------------------
def storm_with_triage(work: Path) -> list[dict[str, Any]]:
    """The storm on the sandbox as ``make run`` starts it, measured with its own Prometheus and Alertmanager (the
    triage runs' ``prometheus_default`` / ``alertmanager_default`` point there): the storm's 5xx counters come from an
    exporter of this bench, added to that Prometheus's scrape targets as the drills add theirs."""
    from sandbox import prometheus as prom
    from tests.fixtures.live_airflow import LiveAirflow, start_launcher, stop_launcher

    home = Path(tempfile.mkdtemp(prefix="bench-triage-storm-", dir=work))
    exporter = prom.MetricsExporter().start()
    process = None
    try:
        facts, process = start_launcher(home / "airflow", timeout=900)  # a busy machine starts it slowly
        alerting = facts["published"].get("alerting")
        if not alerting:
            raise RuntimeError("the sandbox runs no Prometheus/Alertmanager (Debian packages missing)")
        prom.write_targets(Path(alerting["targets_file"]), [exporter.address])
        prom.reload_prometheus(alerting["prometheus"])
        tag = uuid.uuid4().hex[:6]
        services = [f"storm-{tag}-{index:03d}" for index in range(STORM_TARGETS)]
        selector = f'http_requests_total{{service=~"storm-{tag}-.*"}}'
        for service in services:
            exporter.values[f'http_requests_total{{service="{service}",code="500"}}'] = 0
        prom.wait_for_scrapes(alerting["prometheus"], selector, samples=3, timeout=180)
        for index, service in enumerate(services):
            if index % BURST_EVERY == 0:
                exporter.values[f'http_requests_total{{service="{service}",code="500"}}'] = 50
        prom.wait_for_scrapes(alerting["prometheus"], selector, samples=8, timeout=180)
        live = LiveAirflow(facts, process)
        live.wait_for_dag("triage_alert")
        intake = facts["published"]["alert_intake"]
        url, headers = f"{live.base_url}{intake['path']}", {"Authorization": f"Bearer {intake['token']}"}
        return _storm(live, url, headers, alerting["alertmanager"], services, tag)
    finally:
        if process is not None:
            stop_launcher(process)
        exporter.stop()
        shutil.rmtree(home, ignore_errors=True)


def _storm_alert(service: str, fingerprint: str, **labels: str) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {
            "alertname": "Service5xx",
            "service": service,
            "namespace": "shop",
            "deployment": service,
            "severity": "warning",
            **labels,
        },
        "annotations": {"summary": f"5xx from {service}"},
        "startsAt": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph",
        "fingerprint": fingerprint,
    }


def _storm_deliveries(services: list[str]) -> list[tuple[float, dict[str, Any]]]:
    per_target = STORM_ALERTS // STORM_TARGETS
    timed = []
    tag = services[0].split("-")[1]  # 6 hex digits: the fingerprints are 16 hex digits, as Alertmanager's
    for target, service in enumerate(services):
        first = target * (STORM_SECONDS - 3.0) / len(services)
        for nth in range(per_target):
            extra = {} if nth < 6 else {"replica": f"r{nth}"}  # 6 repeats of the firing alert, 4 other alerts
            fingerprint = f"{target:08x}{tag}{nth if nth >= 6 else 0:02d}"  # the repeats share one
            timed.append(
                (first + 3.0 * nth / per_target, target * per_target + nth, _storm_alert(service, fingerprint, **extra))
            )
    timed.sort(key=lambda item: (item[0], item[1]))
    deliveries = []
    for start in range(0, len(timed), ALERTS_PER_DELIVERY):
        group = [alert for _, _, alert in timed[start : start + ALERTS_PER_DELIVERY]]
        body = {
            "version": "4",
            "groupKey": f'{{}}:{{alertname="Service5xx"}}/{start}',
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "toilless",
            "groupLabels": {"alertname": "Service5xx"},
            "commonLabels": {"alertname": "Service5xx"},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager.example:9093",
            "alerts": group,
        }
        deliveries.append((timed[start][0], body))
    return deliveries


def _storm(
    live: Any, url: str, headers: dict[str, str], alertmanager_url: str, services: list[str], tag: str
) -> list[dict[str, Any]]:
    import concurrent.futures

    import requests

    from sandbox.prometheus import silences

    deliveries = _storm_deliveries(services)
    session = requests.Session()
    first_sent: dict[str, float] = {}

    def send(body: dict[str, Any]) -> tuple[int, float, dict[str, int]]:
        sent = time.time()
        for alert in body["alerts"]:
            first_sent.setdefault(alert["labels"]["service"], sent)
        clock = time.perf_counter()
        try:
            answer = session.post(url, json=body, headers=headers, timeout=60)
        except requests.RequestException as err:
            return 0, time.perf_counter() - clock, {type(err).__name__: len(body["alerts"])}
        counts = answer.json().get("counts", {}) if answer.status_code == 200 else {f"HTTP {answer.status_code}": 1}
        return answer.status_code, time.perf_counter() - clock, counts

    load_before = _load()
    started = time.perf_counter()
    storm_started = time.time()
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        futures = []
        for offset, body in deliveries:
            delay = started + offset - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(send, body))
        results = [future.result() for future in futures]
    sent_seconds = time.perf_counter() - started
    load_storm = _load()
    answers: dict[str, int] = {}
    for _, _, counts in results:
        for key, value in counts.items():
            answers[key] = answers.get(key, 0) + value
    server_errors = sum(1 for code, _, _ in results if code >= 500 or code == 0)
    accepted = sum(
        len(body["alerts"]) for (_, body), (code, _, _) in zip(deliveries, results, strict=True) if code == 200
    )
    # Wait for every service's triage run to exist and finish (or the drain time to pass).
    deadline = time.monotonic() + TRIAGE_DRAIN_SECONDS
    runs: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        runs = _runs(live, "triage_alert", tag)
        if len(runs) >= len(services) and all(r["state"] in ("success", "failed") for r in runs.values()):
            break
        time.sleep(5)
    drained = time.time()
    load_after = _load()
    latencies, ends, verdicts = [], [], {}
    for run_id, found in runs.items():
        service = found["service"]
        task = _get_json(live, f"/api/v2/dags/triage_alert/dagRuns/{run_id}/taskInstances/decide_verdict")
        if task.get("state") != "success" or not task.get("end_date"):
            verdicts[f"decide_verdict {task.get('state')}"] = verdicts.get(f"decide_verdict {task.get('state')}", 0) + 1
            continue
        end = datetime.fromisoformat(task["end_date"].replace("Z", "+00:00")).timestamp()
        ends.append(end)
        latencies.append(end - first_sent[service])
        verdict = _verdict(live, run_id)
        verdicts[verdict] = verdicts.get(verdict, 0) + 1
    states: dict[str, int] = {}
    for found in runs.values():
        states[found["state"]] = states.get(found["state"], 0) + 1
    targets_with_run = {found["service"] for found in runs.values()}
    lost = len(services) - len(targets_with_run)
    silenced = sum(
        1
        for silence in silences(alertmanager_url)
        if silence["status"]["state"] == "active"
        and any(m["name"] == "service" and m["value"].startswith(f"storm-{tag}-") for m in silence["matchers"])
    )
    runbooks = len(_runs(live, "service_error_rate", tag))
    span = (max(ends) - storm_started) if ends else 0.0
    rate = len(ends) / span * 60 if span > 0 else 0.0
    context = (
        f"{STORM_ALERTS} alerts for {STORM_TARGETS} services in {len(deliveries)} deliveries of {ALERTS_PER_DELIVERY} "
        f"sent in {sent_seconds:.1f} s to the sandbox Airflow (SQLite, LocalExecutor); load before: {load_before}, "
        f"end of the storm: {load_storm}, when the runs were done: {load_after}"
    )
    p50 = statistics.median(latencies) if latencies else float("nan")
    p99 = _percentile(latencies, 0.99) if latencies else float("nan")
    row = "storm with triage on"
    return [
        _storm_row(
            f"{row}: alerts accepted / sent",
            f"{accepted} / {STORM_ALERTS}",
            "all",
            accepted == STORM_ALERTS,
            f"answers: {answers}; {context}",
        ),
        _storm_row(
            f"{row}: services without a triage run (lost)",
            str(lost),
            "0",
            lost == 0,
            f"triage runs: {len(runs)} for {STORM_TARGETS} services (one per incident), states {states}",
        ),
        _storm_row(
            f"{row}: 5xx or failed requests",
            str(server_errors),
            "0",
            server_errors == 0,
            f"intake answer p50 {statistics.median([d for _, d, _ in results]) * 1000:.0f} ms, "
            f"max {max(d for _, d, _ in results) * 1000:.0f} ms",
        ),
        _storm_row(
            f"{row}: triage decisions per minute",
            f"{rate:.0f}",
            "-",
            None,
            f"{len(ends)} verdicts from the storm's first alert to the last verdict in {span:.0f} s; "
            f"verdicts {verdicts}; silences active in Alertmanager: {silenced}; runbook runs started: "
            f"{runbooks} (one service in {BURST_EVERY} has a 5xx burst); waited {drained - storm_started:.0f} s",
        ),
        _storm_row(
            f"{row}: verdict latency p50 / p99 (first alert POSTed -> decide_verdict done)",
            f"{p50:.1f} / {p99:.1f} s",
            "-",
            None,
            f"max {max(latencies):.1f} s; includes queueing behind triage_alert's max_active_runs=16 and the "
            "executor's slots"
            if latencies
            else "no verdict",
        ),
    ]


def _get_json(live: Any, path: str) -> dict[str, Any]:
    """GET ``path``, retried on a 5xx (SQLite busy); {} if it never answers."""
    import requests

    for _attempt in range(10):
        try:
            answer = live.api("GET", path)
        except requests.RequestException:
            time.sleep(3)
            continue
        if answer.status_code < 500:
            return answer.json() if answer.status_code == 200 else {}
        time.sleep(3)
    return {}


def _verdict(live: Any, run_id: str) -> str:
    """The verdict decide_verdict returned (its XCom), or "?" if it cannot be read."""
    try:
        answer = live.api(
            "GET", f"/api/v2/dags/triage_alert/dagRuns/{run_id}/taskInstances/decide_verdict/xcomEntries/return_value"
        )
        value = answer.json().get("value") if answer.status_code == 200 else None
        if isinstance(value, str):
            value = json.loads(value)
        return str(value.get("verdict", "?")) if isinstance(value, dict) else "?"
    except (ValueError, AttributeError, OSError):
        return "?"


def _runs(live: Any, dag_id: str, tag: str) -> dict[str, dict[str, Any]]:
    """The storm's runs of ``dag_id`` (run id -> state and service), read through the REST API."""
    import requests

    found: dict[str, dict[str, Any]] = {}
    offset = 0
    while True:
        answer = None
        # SQLite answers 500 "database is locked", or nothing within 60 s, now and then under the storm's runs.
        for _attempt in range(10):
            try:
                answer = live.api(
                    "GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100, "offset": offset, "order_by": "id"}
                )
            except requests.RequestException:
                answer = None
            if answer is not None and answer.status_code < 500:
                break
            time.sleep(3)
        if answer is None:
            raise RuntimeError(f"the REST API did not list {dag_id}'s runs after 10 tries")
        answer.raise_for_status()
        page = answer.json()["dag_runs"]
        for run in page:
            labels = (((run.get("conf") or {}).get("alert") or {}).get("labels")) or {}
            service = str(labels.get("service", ""))
            if service.startswith(f"storm-{tag}-"):
                found[run["dag_run_id"]] = {"state": run["state"], "service": service}
        if len(page) < 100:
            return found
        offset += 100


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} cores"


def _storm_row(metric: str, value: str, goal: str, met: bool | None, notes: str) -> dict[str, Any]:
    return {"benchmark": "triage_alert", "metric": metric, "value": value, "goal": goal, "met": met, "notes": notes}


if __name__ == "__main__":
    for row in run(Path(tempfile.gettempdir())):
        print(row)
