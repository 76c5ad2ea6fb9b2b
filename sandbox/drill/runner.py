"""One drill against a running sandbox: inject, let the real alerting path fire, watch the incident, verify recovery."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox import prometheus
from sandbox.drill import report
from sandbox.drill.exporters import EXPORTERS
from sandbox.drill.injectors import INJECTORS
from sandbox.drill.recovery import CHECKS
from sandbox.drill.scenarios import Scenario
from sandbox.service import PROJECT_ROOT

#: Who acknowledges: the drill answers as the on-call person would, as soon as the escalation reaches Slack.
RESPONDER = "drill-oncall"


@dataclass
class Outcome:
    scenario: str
    passed: bool
    report_path: Path
    figures: report.Figures
    problems: list[str]


class Airflow:
    """The running sandbox's REST API and the intake's incident routes (its published facts)."""

    def __init__(self, facts: dict[str, Any]) -> None:
        self.facts = facts
        self.base_url: str = facts["base_url"]
        self.intake_token: str = facts["published"]["alert_intake"]["token"]
        self._token: str | None = None

    def _call(self, method: str, url: str, token: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, None
        except (urllib.error.URLError, OSError, ValueError):
            return 0, None

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        if self._token is None:
            request = urllib.request.Request(
                f"{self.base_url}/auth/token",
                data=json.dumps({"username": self.facts["username"], "password": self.facts["password"]}).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=30) as answer:
                self._token = json.loads(answer.read())["access_token"]
        return self._call(method, f"{self.base_url}{path}", self._token, body)

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        status, body = self._call("GET", f"{self.base_url}/toilless/incidents/{incident_id}", self.intake_token)
        return body if status == 200 else None

    def acknowledge(self, incident_id: str) -> int:
        url = f"{self.base_url}/toilless/incidents/{incident_id}/ack"
        return self._call("POST", url, self.intake_token, {"by": RESPONDER, "via": "rest"})[0]

    def wait_for_dag(self, dag_id: str, timeout: float = 240.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.api("GET", f"/api/v2/dags/{dag_id}")[0] == 200:
                return True
            time.sleep(2)
        return False


def incident_id_of(alert: dict[str, Any]) -> str:
    """The incident id the intake gives this firing (toilless.incidents.events.incident_key)."""
    plugins = str(PROJECT_ROOT / "plugins")
    if plugins not in sys.path:
        sys.path.insert(0, plugins)
    from toilless.incidents.events import incident_key

    return incident_key(str(alert["fingerprint"]), str(alert["startsAt"]))


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min, {os.cpu_count()} CPUs)"


class SandboxAlerting:
    """The running sandbox's Prometheus and Alertmanager (sandbox/services/alerting.py), given one scenario's rule.

    The scenario's exporter runs here, in the drill, reading the sandbox live on every scrape; Prometheus scrapes it
    through its file_sd targets file and evaluates the scenario's rule once reloaded. :meth:`close` takes both out
    again, so an attached ``make run`` is left with no drill rule firing.
    """

    def __init__(self, facts: dict[str, Any], scenario: Scenario) -> None:
        alerting = facts["published"].get("alerting")
        if not alerting:
            raise RuntimeError(
                f"drill {scenario.name}: the sandbox runs no Prometheus/Alertmanager "
                "(install the Debian packages prometheus and prometheus-alertmanager, then restart it)"
            )
        self.prometheus_url: str = alerting["prometheus"]
        self.alertmanager_url: str = alerting["alertmanager"]
        self.rules_file = Path(alerting["rules_file"])
        self.targets_file = Path(alerting["targets_file"])
        self.notifications = Path(alerting["notifications"])
        published = facts["published"]
        self.exporter = prometheus.MetricsExporter(lambda: EXPORTERS[scenario.exporter](published)).start()
        self.started = time.time()
        try:
            prometheus.write_rules(self.rules_file, [scenario.rule()])
            prometheus.write_targets(self.targets_file, [self.exporter.address])
            prometheus.reload_prometheus(self.prometheus_url)
        except BaseException:
            self.close()
            raise

    def quiet(self, expr: str) -> bool:
        """The exporter has been scraped and the alert's expression selects nothing: the system looks healthy."""
        up = prometheus.query(self.prometheus_url, f'up{{job="targets", instance="{self.exporter.address}"}} == 1')
        return bool(up) and prometheus.query(self.prometheus_url, expr) == []

    def firing(self, alertname: str) -> list[tuple[float, dict[str, Any]]]:
        """(received at, alert) of the firing ``alertname`` alerts Alertmanager notified since this drill began."""
        timed = prometheus.read_notifications(self.notifications, since=self.started)
        return [
            (at, alert)
            for at, alert in prometheus.firing(timed, alertname)
            if (alert.get("labels") or {}).get("instance") == self.exporter.address
        ]

    def silenced(self, labels: dict[str, str]) -> bool:
        """An active silence in Alertmanager (API v2) whose matchers all hold for these alert labels."""
        alertname = str(labels.get("alertname", ""))
        for silence in prometheus.active_silences(self.alertmanager_url, alertname):
            if all(
                not matcher.get("isRegex")
                and matcher.get("isEqual", True)
                and labels.get(str(matcher.get("name"))) == matcher.get("value")
                for matcher in silence.get("matchers") or []
            ):
                return True
        return False

    def close(self) -> None:
        try:
            prometheus.write_rules(self.rules_file, [])
            prometheus.write_targets(self.targets_file, [])
            prometheus.reload_prometheus(self.prometheus_url)
        except OSError as err:  # the sandbox is stopping; nothing of ours is left to take out
            print(f"drill: could not unload the drill's rule: {err!r}", file=sys.stderr)
        finally:
            self.exporter.stop()


def runbook_runs_since(airflow: Airflow, dag_id: str, since: float) -> int | None:
    """Runs of ``dag_id`` whose run_after is at or after ``since`` (None: Airflow could not tell)."""
    from datetime import datetime

    status, body = airflow.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100&order_by=-run_after")
    if status != 200 or not isinstance(body, dict):
        return None
    count = 0
    for run in body.get("dag_runs", []):
        stamp = run.get("run_after") or run.get("queued_at")
        if stamp and datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp() >= since - 1:
            count += 1
    return count


def run(scenario: Scenario, facts: dict[str, Any], out: Path, *, log: Any = print) -> Outcome:
    airflow = Airflow(facts)
    published = facts["published"]
    healthy = CHECKS[scenario.recovery_check]
    if not healthy(published):
        raise RuntimeError(f"drill {scenario.name}: the sandbox is not healthy before the fault; nothing injected")
    if not airflow.wait_for_dag(scenario.runbook):
        raise RuntimeError(f"drill {scenario.name}: runbook DAG {scenario.runbook!r} is not known to Airflow")
    stack = SandboxAlerting(facts, scenario)
    events: list[dict[str, Any]] = []
    incident_id: str | None = None
    alert_labels: dict[str, str] = {}
    recovered_at: float | None = None
    went_down = False
    silenced: bool | None = None
    try:
        deadline = time.monotonic() + 90
        while not stack.quiet(scenario.alert_expr):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"drill {scenario.name}: Prometheus did not see a healthy, scraped system in 90s "
                    f"(see {stack.prometheus_url}/targets)"
                )
            time.sleep(0.5)
        fault_at = time.time()
        fault = INJECTORS[scenario.injector](published)
        log(f"[{scenario.name}] fault: {fault}")
        seen_down = False
        streak_from: float | None = None
        acknowledged = False
        finished = False
        end = fault_at + scenario.budget_seconds
        while time.time() < end:
            now = time.time()
            ok = healthy(published)
            if not ok:
                seen_down, streak_from = True, None
            elif seen_down and streak_from is None:
                streak_from = now
            if recovered_at is None and streak_from is not None and now - streak_from >= scenario.sustain_seconds:
                recovered_at = streak_from
                log(f"[{scenario.name}] recovery verified, +{recovered_at - fault_at:.1f}s from the fault")
            if incident_id is None and (firing := stack.firing(scenario.alert_name)):
                alert = firing[0][1]
                alert_labels = {str(k): str(v) for k, v in (alert.get("labels") or {}).items()}
                incident_id = incident_id_of(alert)
                log(f"[{scenario.name}] {scenario.alert_name} fired, incident {incident_id}")
            if incident_id is not None:
                found = airflow.incident(incident_id)
                if found is not None:
                    events = list(found["timeline"])
                    kinds = {event["kind"] for event in events}
                    # The on-call person answers an outage; a fault that takes nothing down wakes nobody.
                    if scenario.outage and not acknowledged and "message_sent" in kinds:
                        acknowledged = airflow.acknowledge(incident_id) == 200
                    finished = "runbook_finished" in kinds
            if finished and (recovered_at is not None or not scenario.outage):
                break
            time.sleep(1)
        went_down = seen_down and not scenario.outage
        if incident_id is not None and (found := airflow.incident(incident_id)) is not None:
            events = list(found["timeline"])
        if alert_labels:
            silenced = stack.silenced(alert_labels)
    finally:
        stack.close()
    found_figures = report.figures(fault_at, events, recovered_at)
    found_figures.silenced = silenced
    found_figures.runbook_runs = runbook_runs_since(airflow, scenario.runbook, fault_at)
    problems = report.verdict(scenario.expect, found_figures, scenario.budget_seconds, outage=scenario.outage)
    if incident_id is None:
        problems.insert(
            0, f"no {scenario.alert_name} alert reached Alertmanager's receivers (see {stack.notifications})"
        )
    elif scenario.outage and recovered_at is not None and not finished:
        problems.append("the runbook did not report (no runbook_finished event) within the budget")
    if went_down:
        problems.append(f"the {scenario.recovery_check} check failed during a fault that should take nothing down")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{scenario.name}.md"
    path.write_text(
        report.markdown(
            scenario=scenario.name,
            description=scenario.description,
            fault_at=fault_at,
            fault=fault,
            incident_id=incident_id,
            events=events,
            found=found_figures,
            problems=problems,
            load_average=load_average(),
        ),
        encoding="utf-8",
    )
    try:
        from sandbox.drill.chart import write_chart

        write_chart(
            out / f"{scenario.name}.png", scenario=scenario.name, fault_at=fault_at, events=events, found=found_figures
        )
    except Exception as err:  # the chart is a picture of the report, never the reason a drill fails
        log(f"[{scenario.name}] timeline chart not drawn: {err!r}")
    return Outcome(scenario.name, not problems, path, found_figures, problems)


def start_sandbox(home: Path, timeout: float = 600.0) -> tuple[dict[str, Any], subprocess.Popen[bytes]]:
    """``python -m sandbox run`` on free ports (what ``make run`` runs), until its ready file appears."""
    home.mkdir(parents=True, exist_ok=True)
    ready = home / "ready.json"
    ready.unlink(missing_ok=True)
    output = (home / "launcher.log").open("ab")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "sandbox", "run", "--home", str(home / "airflow"), "--free-ports"),
            *("--env-file", os.devnull, "--ready-file", str(ready)),
        ],
        cwd=PROJECT_ROOT,
        stdout=output,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if process.poll() is not None:
            raise RuntimeError(f"the sandbox exited with {process.returncode}: see {output.name}")
        if time.monotonic() > deadline:
            stop_sandbox(process)
            raise TimeoutError(f"the sandbox was not ready after {timeout:.0f}s: see {output.name}")
        time.sleep(0.5)
    time.sleep(0.2)
    return json.loads(ready.read_text(encoding="utf-8")), process


def stop_sandbox(process: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    """Ctrl-C, as a user stops ``make run``; the launcher stops everything it started."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
