"""One launcher for a real Prometheus and Alertmanager (Debian packages) on loopback, shared by the sandbox
(``sandbox/services/alerting.py``), the drills (``sandbox/drill/``), the tests (``tests/fixtures/prometheus.py``) and
the benchmarks.

* :class:`MetricsExporter`: ``/metrics`` from a dict a caller changes, or from a function called live on every scrape.
* :class:`NotificationRecorder`: keeps every Alertmanager notification body (with the time it arrived).
* :class:`AlertingStack`: Prometheus scraping exporters every second with alerting rules, Alertmanager delivering to a
  webhook (Bearer token) and to the recorder. With ``lifecycle=True`` the rules and scrape targets can be replaced
  while it runs (:meth:`AlertingStack.reload`): the sandbox keeps one stack and each drill loads its own rule.
* :class:`PrometheusServer` (Prometheus alone, for PromQL) and :class:`AlertmanagerServer` (Alertmanager alone, for
  its silences API).

Facts checked on these packages (docs/AIRFLOW_NOTES-style): ``--rules.alert.resend-delay=1s`` because the first
notification is dropped before Alertmanager is discovered; ``--cluster.listen-address=`` so no gossip port opens.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from email.message import Message
from pathlib import Path
from typing import Any

import yaml

from sandbox.http import LoopbackHTTPServer, Response
from sandbox.ports import HOST, free_port, wait_for_port

PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")

Samples = dict[str, float]


def available() -> bool:
    """Both Debian packages are installed."""
    return bool(PROMETHEUS and ALERTMANAGER)


class MetricsExporter(LoopbackHTTPServer):
    """``/metrics`` in the text format: ``collect()`` on every scrape when given, else ``values`` as it is now.

    A ``collect`` that raises answers 500: an exporter that cannot read what it watches is down, as a real one is.
    """

    name = "metrics-exporter"

    def __init__(self, collect: Callable[[], Samples] | None = None, port: int = 0) -> None:
        super().__init__(port)
        self.values: Samples = {}
        self.collect = collect

    def handle(self, method: str, path: str, headers: Message, body: bytes) -> Response:
        try:
            samples = self.collect() if self.collect is not None else dict(self.values)
        except Exception as err:  # any failure to read the watched system is the exporter being down
            return 500, [("Content-Type", "text/plain")], f"exporter failed: {err!r}\n".encode()
        text = "".join(f"{series} {value}\n" for series, value in samples.items()).encode()
        return 200, [("Content-Type", "text/plain; version=0.0.4")], text

    @property
    def address(self) -> str:
        """``host:port``, as a scrape target."""
        return f"{HOST}:{self.port}"


class NotificationRecorder(LoopbackHTTPServer):
    """Keeps every Alertmanager notification body it receives, with the time it arrived.

    With ``jsonl``, each one is also appended there as ``{"at": epoch seconds, "body": ...}``: another process (a
    drill attached to ``make run``) reads what the sandbox's Alertmanager sent with :func:`read_notifications`.
    """

    name = "notification-recorder"

    def __init__(self, jsonl: Path | None = None) -> None:
        super().__init__()
        self.timed: list[tuple[float, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.jsonl = jsonl

    def handle(self, method: str, path: str, headers: Message, body: bytes) -> Response:
        try:
            decoded = json.loads(body or b"{}")
        except ValueError:
            return 400, [], b"not JSON\n"
        at = time.time()
        with self.lock:
            self.timed.append((at, decoded))
            if self.jsonl is not None:
                with self.jsonl.open("a", encoding="utf-8") as out:
                    out.write(json.dumps({"at": at, "body": decoded}) + "\n")
        return 200, [], b""

    @property
    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [body for _, body in self.timed]

    def received(self, status: str | None = None) -> list[dict[str, Any]]:
        return [body for body in self.bodies if status is None or body.get("status") == status]

    def wait_for(self, status: str, count: int = 1, timeout: float = 60.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.received(status)
            if len(found) >= count:
                return found
            time.sleep(0.2)
        raise TimeoutError(f"{len(self.received(status))} of {count} {status} notifications after {timeout}s")

    def firing(self, alertname: str) -> list[tuple[float, dict[str, Any]]]:
        """(received at, alert) of every firing ``alertname`` alert notified so far."""
        with self.lock:
            timed = list(self.timed)
        return firing(timed, alertname)


def firing(timed: list[tuple[float, dict[str, Any]]], alertname: str) -> list[tuple[float, dict[str, Any]]]:
    """(received at, alert) of every firing ``alertname`` alert in these notifications."""
    return [
        (at, alert)
        for at, body in timed
        for alert in body.get("alerts", [])
        if alert.get("status") == "firing" and alert.get("labels", {}).get("alertname") == alertname
    ]


def read_notifications(jsonl: Path, since: float = 0.0) -> list[tuple[float, dict[str, Any]]]:
    """What a :class:`NotificationRecorder` with ``jsonl`` recorded, from ``since`` (epoch seconds) on."""
    if not jsonl.exists():
        return []
    found = []
    for line in jsonl.read_text(encoding="utf-8").splitlines():
        try:
            item = json.loads(line)
        except ValueError:  # a line being written right now
            continue
        if float(item["at"]) >= since:
            found.append((float(item["at"]), dict(item["body"])))
    return found


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def http_json(url: str, *, data: Any = None, method: str | None = None, timeout: float = 10.0) -> Any:
    """GET (or POST ``data`` as JSON) and decode the JSON answer."""
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        raw = answer.read()
    return json.loads(raw) if raw else None


class AlertingStack:
    """Prometheus (scrape and evaluation every second) with alerting rules → Alertmanager → webhook + recorder.

    :param work: a directory of its own (configs, data, logs)
    :param rules: Prometheus alerting rules (``{"alert", "expr", "for", "labels"}``)
    :param webhook_url: where Alertmanager delivers (the intake), with ``Authorization: Bearer <token>``
    :param targets: scrape targets (``host:port``) besides the stack's own exporter
    :param repeat_interval: Alertmanager's repeat of a still-firing alert (short in tests that count repeats)
    :param lifecycle: allow :meth:`reload` (``--web.enable-lifecycle``; targets read from a file_sd file)
    :param notifications: a JSONL file the recorder appends every notification to (read by another process)
    :param prometheus_port: / ``alertmanager_port``: the ports (0: free ones)
    """

    def __init__(
        self,
        work: Path,
        *,
        rules: list[dict[str, Any]] | None = None,
        webhook_url: str | None = None,
        token: str | None = None,
        targets: list[str] | None = None,
        repeat_interval: str = "4s",
        lifecycle: bool = False,
        honor_labels: bool = False,
        collect: Callable[[], Samples] | None = None,
        notifications: Path | None = None,
        prometheus_port: int = 0,
        alertmanager_port: int = 0,
    ) -> None:
        self.work = work
        self.work.mkdir(parents=True, exist_ok=True)
        self.exporter = MetricsExporter(collect).start()
        self.recorder = NotificationRecorder(notifications).start()
        self.prometheus_port = prometheus_port or free_port()
        self.alertmanager_port = alertmanager_port or free_port()
        self.lifecycle = lifecycle
        self.processes: list[subprocess.Popen[bytes]] = []
        self._write_alertmanager(webhook_url, token, repeat_interval)
        self._write_prometheus(honor_labels)
        self.write_rules(rules or [])
        self.write_targets(targets or [])

    @property
    def alertmanager_url(self) -> str:
        return f"http://{HOST}:{self.alertmanager_port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://{HOST}:{self.prometheus_port}"

    @property
    def rules_file(self) -> Path:
        return self.work / "rules.yml"

    @property
    def targets_file(self) -> Path:
        return self.work / "targets.json"

    def _write_alertmanager(self, webhook_url: str | None, token: str | None, repeat_interval: str) -> None:
        webhooks: list[dict[str, Any]] = [{"url": f"{self.recorder.url}/", "send_resolved": True}]
        if webhook_url:
            webhook: dict[str, Any] = {"url": webhook_url, "send_resolved": True}
            if token:
                webhook["http_config"] = {"authorization": {"type": "Bearer", "credentials": token}}
            webhooks.insert(0, webhook)
        config = {
            "route": {
                "receiver": "toilless",
                "group_by": ["alertname"],
                "group_wait": "1s",
                "group_interval": "2s",
                "repeat_interval": repeat_interval,
            },
            "receivers": [{"name": "toilless", "webhook_configs": webhooks}],
        }
        (self.work / "alertmanager.yml").write_text(yaml.safe_dump(config), encoding="utf-8")

    def _write_prometheus(self, honor_labels: bool) -> None:
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(self.rules_file)],
            "scrape_configs": [
                {
                    "job_name": "exporter",
                    "honor_labels": honor_labels,
                    "static_configs": [{"targets": [self.exporter.address]}],
                },
                # Targets that come and go (a drill's exporter): a file Prometheus re-reads, no restart.
                {
                    "job_name": "targets",
                    "honor_labels": True,
                    "file_sd_configs": [{"files": [str(self.targets_file)], "refresh_interval": "1s"}],
                },
            ],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"{HOST}:{self.alertmanager_port}"]}]}]},
        }
        (self.work / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")

    def write_rules(self, rules: list[dict[str, Any]]) -> None:
        write_rules(self.rules_file, rules)

    def write_targets(self, targets: list[str]) -> None:
        write_targets(self.targets_file, targets)

    def start(self) -> AlertingStack:
        if not available():
            raise RuntimeError(
                "Prometheus and Alertmanager need the Debian packages prometheus, prometheus-alertmanager"
            )
        assert ALERTMANAGER
        assert PROMETHEUS
        self._spawn(
            "alertmanager",
            [
                ALERTMANAGER,
                f"--config.file={self.work / 'alertmanager.yml'}",
                f"--storage.path={self.work / 'am-data'}",
                f"--web.listen-address={HOST}:{self.alertmanager_port}",
                "--cluster.listen-address=",
                f"--web.external-url={self.alertmanager_url}",
            ],
        )
        wait_for_port(self.alertmanager_port, timeout=60)
        argv = [
            PROMETHEUS,
            f"--config.file={self.work / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.work / 'prom-data'}",
            f"--web.listen-address={HOST}:{self.prometheus_port}",
            # The first notification is sent before Alertmanager is discovered: resend soon, not in a minute.
            "--rules.alert.resend-delay=1s",
        ]
        if self.lifecycle:
            argv.append("--web.enable-lifecycle")
        self._spawn("prometheus", argv)
        wait_for_port(self.prometheus_port, timeout=60)
        return self

    def reload(self, *, rules: list[dict[str, Any]] | None = None, targets: list[str] | None = None) -> None:
        """Replace the rules and/or the extra scrape targets of a running stack (``lifecycle=True``)."""
        if rules is not None:
            self.write_rules(rules)
        if targets is not None:
            self.write_targets(targets)
        reload_prometheus(self.prometheus_url)

    def query(self, promql: str) -> list[dict[str, Any]] | None:
        return query(self.prometheus_url, promql)

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.work / f"{name}.log").open("ab")
        self.processes.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))

    def stop(self) -> None:
        for process in reversed(self.processes):
            _stop_process(process)
        self.processes.clear()
        self.exporter.stop()
        self.recorder.stop()


def _replace(path: Path, text: str) -> None:
    # Written whole then renamed: Prometheus never reads half a file.
    partial = path.with_suffix(".tmp")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def write_rules(path: Path, rules: list[dict[str, Any]]) -> None:
    """The alerting rules file of an :class:`AlertingStack` (one group, evaluated every second)."""
    _replace(path, yaml.safe_dump({"groups": [{"name": "toilless", "interval": "1s", "rules": list(rules)}]}))


def write_targets(path: Path, targets: list[str]) -> None:
    """The file_sd file of an :class:`AlertingStack`'s ``targets`` job (``host:port`` each).

    Always one target group, even an empty one: after a reload, Prometheus 2.42 keeps the previous targets when the
    file holds no group at all (checked), and drops them when it holds an empty group.
    """
    _replace(path, json.dumps([{"targets": list(targets)}]))


def reload_prometheus(prometheus_url: str) -> None:
    """``POST /-/reload`` (needs ``--web.enable-lifecycle``): rules and targets are read again."""
    request = urllib.request.Request(f"{prometheus_url}/-/reload", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=30) as answer:
        answer.read()


def wait_for_scrapes(prometheus_url: str, selector: str, *, samples: int = 2, timeout: float = 30.0) -> None:
    """Wait until every series of ``selector`` that is exported now has at least ``samples`` scraped samples (so
    rate() has data). Series that went away are left out (``and``): a pod served for a second or two and gone would
    otherwise hold the minimum below ``samples`` for the whole window."""
    deadline = time.monotonic() + timeout
    expr = f"min(count_over_time({selector}[10m]) and {selector})"
    while time.monotonic() < deadline:
        result = query(prometheus_url, expr)
        if result and float(result[0]["value"][1]) >= samples:
            return
        time.sleep(0.2)
    raise TimeoutError(f"{selector} has fewer than {samples} samples after {timeout}s")


def query(prometheus_url: str, promql: str) -> list[dict[str, Any]] | None:
    """The instant query's result vector (None when Prometheus cannot answer yet)."""
    url = f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        return list(http_json(url)["data"]["result"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class PrometheusServer:
    """Prometheus alone, scraping its own :class:`MetricsExporter` every second (``honor_labels``)."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.exporter = MetricsExporter().start()
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": "exporter", "honor_labels": True, "static_configs": [{"targets": [self.exporter.address]}]}
            ],
        }
        (work / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> PrometheusServer:
        if not PROMETHEUS:
            raise RuntimeError("Prometheus needs the Debian package prometheus")
        log = (self.work / "prometheus.log").open("ab")
        self.process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={self.work / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.work / 'data'}",
                f"--web.listen-address={HOST}:{self.port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        wait_for_port(self.port, timeout=30)
        return self

    def instant(self, expr: str) -> list[dict[str, Any]]:
        """``expr`` evaluated now, as the API's ``result`` list (a test helper, independent of the code under test)."""
        body = urllib.parse.urlencode({"query": expr}).encode()
        with urllib.request.urlopen(f"{self.url}/api/v1/query", data=body, timeout=10) as answer:
            return list(json.loads(answer.read())["data"]["result"])

    def wait_for_scrapes(self, selector: str, *, samples: int = 2, timeout: float = 30.0) -> None:
        """:func:`wait_for_scrapes` on this server."""
        wait_for_scrapes(self.url, selector, samples=samples, timeout=timeout)

    def stop(self) -> None:
        if self.process is not None:
            _stop_process(self.process)
            self.process = None
        self.exporter.stop()


class AlertmanagerServer:
    """Alertmanager alone (no receivers that deliver anywhere), for its API v2: silences are created and read for real."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        config = {"route": {"receiver": "nowhere"}, "receivers": [{"name": "nowhere"}]}
        (work / "alertmanager.yml").write_text(yaml.safe_dump(config), encoding="utf-8")

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> AlertmanagerServer:
        if not ALERTMANAGER:
            raise RuntimeError("Alertmanager needs the Debian package prometheus-alertmanager")
        log = (self.work / "alertmanager.log").open("ab")
        self.process = subprocess.Popen(
            [
                ALERTMANAGER,
                f"--config.file={self.work / 'alertmanager.yml'}",
                f"--storage.path={self.work / 'data'}",
                f"--web.listen-address={HOST}:{self.port}",
                "--cluster.listen-address=",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        wait_for_port(self.port, timeout=30)
        return self

    def silences(self) -> list[dict[str, Any]]:
        """:func:`silences` of this server."""
        return silences(self.url)

    def stop(self) -> None:
        if self.process is not None:
            _stop_process(self.process)
            self.process = None


def silences(alertmanager_url: str) -> list[dict[str, Any]]:
    """Every silence Alertmanager holds (GET /api/v2/silences), read independently of the code under test."""
    return list(http_json(f"{alertmanager_url}/api/v2/silences"))


def active_silences(alertmanager_url: str, alertname: str) -> list[dict[str, Any]]:
    """Active silences whose matchers include ``alertname="<alertname>"`` (Alertmanager API v2)."""
    return [
        silence
        for silence in silences(alertmanager_url)
        if (silence.get("status") or {}).get("state") == "active"
        and any(
            m.get("name") == "alertname" and m.get("value") == alertname and not m.get("isRegex")
            for m in silence.get("matchers") or []
        )
    ]


def alerts(alertmanager_url: str, alertname: str) -> list[dict[str, Any]]:
    """Alerts Alertmanager holds now for ``alertname`` (API v2, silenced ones included)."""
    url = f"{alertmanager_url}/api/v2/alerts?" + urllib.parse.urlencode({"filter": f'alertname="{alertname}"'})
    try:
        return list(http_json(url) or [])
    except (OSError, ValueError, urllib.error.URLError):
        return []
