"""The drill's real alerting path: the scenario's exporter, Prometheus (Debian package) and Alertmanager delivering to the
intake webhook (Bearer token) and to a recorder the drill reads the firing's fingerprint and startsAt from.

The exporter is the scenario's (sandbox/drill/exporters.py): each scrape reads the sandbox live (for bad_deploy a
blackbox-style probe of the demo app's public URL), so Prometheus sees what production monitoring would see.
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from sandbox.ports import HOST, free_port, wait_for_port

PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer((HOST, 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"{HOST}:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ScenarioExporter(_Server):
    """``/metrics``: the scenario's exporter function, called live on every scrape (see sandbox/drill/exporters.py)."""

    def __init__(self, collect: Callable[[], dict[str, float]]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                try:
                    samples = collect()
                    body = "".join(f"{series} {value}\n" for series, value in samples.items()).encode()
                    status = 200
                except Exception as err:  # an exporter that cannot read the sandbox is down, as a real one would be
                    body, status = f"exporter failed: {err!r}\n".encode(), 500
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(Handler)


class NotificationRecorder(_Server):
    """Keeps every Alertmanager notification body (with the time it arrived)."""

    def __init__(self) -> None:
        self.bodies: list[tuple[float, dict[str, Any]]] = []
        self.lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with recorder.lock:
                    recorder.bodies.append((time.time(), json.loads(raw)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        super().__init__(Handler)

    def firing(self, alertname: str) -> list[tuple[float, dict[str, Any]]]:
        """(received at, alert) of every firing ``alertname`` alert notified so far."""
        with self.lock:
            bodies = list(self.bodies)
        return [
            (at, alert)
            for at, body in bodies
            for alert in body.get("alerts", [])
            if alert.get("status") == "firing" and alert.get("labels", {}).get("alertname") == alertname
        ]


class AlertingStack:
    """Prometheus scraping the scenario's exporter every second with the scenario's rule; Alertmanager to the intake."""

    def __init__(self, work: Path, *, collect: Callable[[], dict[str, float]], rule: dict[str, Any]) -> None:
        self.work = work
        self.exporter = ScenarioExporter(collect)
        self.recorder = NotificationRecorder()
        self.prometheus_port = free_port()
        self.alertmanager_port = free_port()
        self.rule = rule
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, webhook_url: str, token: str) -> AlertingStack:
        if not (PROMETHEUS and ALERTMANAGER):
            raise RuntimeError("the drill needs the Debian packages prometheus and prometheus-alertmanager")
        self.work.mkdir(parents=True, exist_ok=True)
        alertmanager = {
            "route": {
                "receiver": "toilless",
                "group_by": ["alertname"],
                "group_wait": "1s",
                "group_interval": "2s",
                "repeat_interval": "1h",
            },
            "receivers": [
                {
                    "name": "toilless",
                    "webhook_configs": [
                        {
                            "url": webhook_url,
                            "send_resolved": True,
                            "http_config": {"authorization": {"type": "Bearer", "credentials": token}},
                        },
                        {"url": f"http://{self.recorder.address}/", "send_resolved": True},
                    ],
                }
            ],
        }
        (self.work / "alertmanager.yml").write_text(yaml.safe_dump(alertmanager), encoding="utf-8")
        (self.work / "rules.yml").write_text(
            yaml.safe_dump({"groups": [{"name": "drill", "interval": "1s", "rules": [self.rule]}]}), encoding="utf-8"
        )
        prometheus = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(self.work / "rules.yml")],
            "scrape_configs": [
                {"job_name": "drill", "honor_labels": True, "static_configs": [{"targets": [self.exporter.address]}]}
            ],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"{HOST}:{self.alertmanager_port}"]}]}]},
        }
        (self.work / "prometheus.yml").write_text(yaml.safe_dump(prometheus), encoding="utf-8")
        self._spawn(
            "alertmanager",
            [
                ALERTMANAGER,
                f"--config.file={self.work / 'alertmanager.yml'}",
                f"--storage.path={self.work / 'am-data'}",
                f"--web.listen-address={HOST}:{self.alertmanager_port}",
                "--cluster.listen-address=",
            ],
        )
        wait_for_port(self.alertmanager_port, timeout=60)
        self._spawn(
            "prometheus",
            [
                PROMETHEUS,
                f"--config.file={self.work / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.work / 'prom-data'}",
                f"--web.listen-address={HOST}:{self.prometheus_port}",
                # The first notification may go out before Alertmanager is discovered: resend soon, not in a minute.
                "--rules.alert.resend-delay=1s",
            ],
        )
        wait_for_port(self.prometheus_port, timeout=60)
        return self

    def query(self, promql: str) -> list[dict[str, Any]] | None:
        """The instant query's result vector (None when Prometheus cannot answer yet)."""
        url = f"http://{HOST}:{self.prometheus_port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return list(json.loads(answer.read())["data"]["result"])
        except (OSError, ValueError, KeyError):
            return None

    def quiet(self, expr: str) -> bool:
        """The exporter has been scraped and the alert's expression selects nothing: the system looks healthy."""
        up = self.query('up{job="drill"} == 1')
        return bool(up) and self.query(expr) == []

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.work / f"{name}.log").open("ab")
        self.processes.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self.processes.clear()
        self.exporter.stop()
        self.recorder.stop()
