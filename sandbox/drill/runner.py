"""One drill against a running sandbox: inject, let the real alerting path fire, watch the incident, verify recovery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox import background, prometheus
from sandbox.drill import report
from sandbox.drill.exporters import EXPORTERS
from sandbox.drill.injectors import INJECTORS, RESTORERS
from sandbox.drill.preparers import PREPARERS, merged
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
            for attempt in range(3):  # the API server answers slowly on a loaded machine: try again, then give up
                try:
                    with urllib.request.urlopen(request, timeout=60) as answer:
                        self._token = json.loads(answer.read())["access_token"]
                    break
                except (urllib.error.URLError, OSError) as err:
                    if attempt == 2:
                        raise RuntimeError(f"no Airflow API token from {self.base_url}: {err!r}") from err
                    time.sleep(5)
        return self._call(method, f"{self.base_url}{path}", self._token, body)

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        status, body = self._call("GET", f"{self.base_url}/toilless/incidents/{incident_id}", self.intake_token)
        return body if status == 200 else None

    def acknowledge(self, incident_id: str) -> int:
        url = f"{self.base_url}/toilless/incidents/{incident_id}/ack"
        return self._call("POST", url, self.intake_token, {"by": RESPONDER, "via": "rest"})[0]

    def wait_for_schedule_gap(self, dag_id: str, seconds: float, timeout: float = 600.0) -> float:
        """Until no run of ``dag_id`` is active and its next scheduled run is ``seconds`` away; the seconds waited."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            status, dag = self.api("GET", f"/api/v2/dags/{dag_id}")
            _, runs = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?state=queued&state=running&limit=1")
            if status == 200 and isinstance(runs, dict):
                gap = schedule_gap(dag.get("next_dagrun_run_after"), int(runs.get("total_entries") or 0), time.time())
                if gap >= seconds:
                    return time.monotonic() - started
            time.sleep(2)
        raise RuntimeError(f"{dag_id}: no gap of {seconds:.0f}s between its scheduled runs within {timeout:.0f}s")

    def variable(self, key: str) -> str | None:
        """The Variable's value (None when it does not exist); raises when Airflow does not say (a value taken for
        missing would be deleted by the restore)."""
        for _attempt in range(3):
            status, body = self.api("GET", f"/api/v2/variables/{key}")
            if status == 200 and isinstance(body, dict):
                return str(body["value"])
            if status == 404:
                return None
        raise RuntimeError(f"Airflow answered {status} reading the Variable {key}")

    def set_variable(self, key: str, value: str | None) -> None:
        """Set (or, with None, delete) a Variable; raises when Airflow refuses."""
        if value is None:
            status = self.api("DELETE", f"/api/v2/variables/{key}")[0]
            ok = status in (204, 404)
        else:
            for _attempt in range(3):  # status 0: no answer in time on a loaded machine
                status = self.api("PATCH", f"/api/v2/variables/{key}", {"key": key, "value": value})[0]
                if status == 404:
                    status = self.api("POST", "/api/v2/variables", {"key": key, "value": value})[0]
                if status != 0:
                    break
            ok = status in (200, 201)
        if not ok:
            raise RuntimeError(f"Airflow answered {status} setting the Variable {key}")

    def pending_approvals(self, dag_id: str) -> list[dict[str, Any]]:
        """The runbook's approval requests nobody has answered yet (Airflow's HITL details)."""
        status, body = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/~/hitlDetails?response_received=false")
        return list(body.get("hitl_details") or []) if status == 200 and isinstance(body, dict) else []

    def answer(self, detail: dict[str, Any], option: str) -> int:
        """Answer one request as a person does in the UI (PATCH .../hitlDetails); 409: someone answered first."""
        ti = detail["task_instance"]
        path = (
            f"/api/v2/dags/{ti['dag_id']}/dagRuns/{urllib.parse.quote(str(ti['dag_run_id']), safe='')}"
            f"/taskInstances/{ti['task_id']}/{ti.get('map_index', -1)}/hitlDetails"
        )
        return self.api("PATCH", path, {"chosen_options": [option], "params_input": {}})[0]

    def wait_for_dag(self, dag_id: str, timeout: float = 240.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.api("GET", f"/api/v2/dags/{dag_id}")[0] == 200:
                return True
            time.sleep(2)
        return False


def schedule_gap(next_run_after: str | None, active_runs: int, now: float) -> float:
    """Seconds until the runbook's next scheduled run (inf: unscheduled); 0 while one of its runs is active (pure)."""
    if active_runs:
        return 0.0
    if not next_run_after:
        return float("inf")
    from datetime import datetime

    return datetime.fromisoformat(next_run_after.replace("Z", "+00:00")).timestamp() - now


def incident_id_of(alert: dict[str, Any]) -> str:
    """The incident id the intake gives this firing (toilless.incidents.events.incident_key)."""
    plugins = str(PROJECT_ROOT / "plugins")
    if plugins not in sys.path:
        sys.path.insert(0, plugins)
    from toilless.incidents.events import incident_key

    return incident_key(str(alert["fingerprint"]), str(alert["startsAt"]))


def asked_after(detail: dict[str, Any], moment: float) -> bool:
    """The approval request was created after ``moment`` (epoch seconds)."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(detail["created_at"]).replace("Z", "+00:00")).timestamp() >= moment
    except (KeyError, ValueError):
        return False


def incident_runs(events: list[dict[str, Any]], dag_id: str) -> set[str]:
    """The runs of ``dag_id`` the intake started for this incident (its ``runbook_started`` events)."""
    return {
        str(data["run_id"])
        for event in events
        if event.get("kind") == "runbook_started"
        and isinstance(data := event.get("data"), dict)
        and data.get("dag_id") == dag_id
        and data.get("run_id")
    }


#: A person's reaction time: the drill answers an approval this long after it first saw the task parked.
RESPONDER_SECONDS = 15.0


def question_key(detail: dict[str, Any]) -> str:
    ti = detail.get("task_instance") or {}
    return f"{ti.get('dag_run_id')}/{ti.get('task_id')}/{ti.get('map_index', -1)}"


def ready_to_answer(
    detail: dict[str, Any], option: str, runs: set[str], fault_at: float, parked_since: dict[str, float], now: float
) -> bool:
    """Answer this question now? Only one of this incident's runs (never a scheduled run's question, nor an older
    one), with ``option`` among its choices, once its task has waited (parked) ``RESPONDER_SECONDS``; ``parked_since``
    remembers when the drill first saw each question's task parked (monotonic ``now``)."""
    if option not in (detail.get("options") or []):
        return False
    if str((detail.get("task_instance") or {}).get("dag_run_id")) not in runs or not asked_after(detail, fault_at):
        return False
    if not waiting_for_answer(detail):
        return False
    return now - parked_since.setdefault(question_key(detail), now) >= RESPONDER_SECONDS


#: Task states in which an approval task waits for its answer (Airflow resumes it from these at once).
PARKED_STATES = frozenset({"awaiting_input", "deferred"})


def waiting_for_answer(detail: dict[str, Any]) -> bool:
    """The approval task has parked and waits for the answer.

    The question exists (and shows in Airflow's Required Actions) from the moment the operator creates it, seconds
    before the task posts to Slack and parks. Answered before the scheduler has processed the LocalExecutor's event
    for the process that parked, Airflow 3.3.2 resumes the task (scheduled, queued) and the late "success" event then
    finds it queued: the scheduler marks it failed. Seen in two rds_near_full drills at load 40-60 on 2 cores: an
    answer 4 s after the question (task still running) and one 2 s after the task parked (the executor's event came
    1.3 s after the answer); nothing was grown. The drill answers as a person who read the Slack request does: after
    the task parked, and ``RESPONDER_SECONDS`` later.
    """
    return str((detail.get("task_instance") or {}).get("state") or "") in PARKED_STATES


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min, {os.cpu_count()} CPUs)"


def apply_overrides(
    airflow: Airflow, overrides: dict[str, dict[str, Any]], originals: dict[str, str | None] | None = None
) -> dict[str, str | None]:
    """Merge each override into its Variable's JSON; fills and returns ``originals``, the values to put back (filled
    before each change, so a failure halfway still restores what was changed)."""
    originals = {} if originals is None else originals
    for key, override in overrides.items():
        original = airflow.variable(key)
        originals[key] = original
        try:
            current = json.loads(original) if original else {}
        except ValueError:
            current = {}
        airflow.set_variable(key, json.dumps(merged(current, override)))
    return originals


def restore(airflow: Airflow, originals: dict[str, str | None], log: Any) -> None:
    for key, value in originals.items():
        try:
            airflow.set_variable(key, value)
        except (RuntimeError, OSError) as err:  # reported, never hidden: the sandbox keeps the drill's setting
            log(f"could not restore the Variable {key}: {err}")


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
        # The rule labels its alerts with the drill's name: how firing() tells them apart. Not the exporter's
        # address: Prometheus honours the labels exporters set, and a DNS or node-style exporter sets its own
        # ``instance``, as the real ones do.
        self.label = {"drill": scenario.name}
        rule = scenario.rule()
        rule["labels"] = {**rule.get("labels", {}), **self.label}
        try:
            prometheus.write_rules(self.rules_file, [rule])
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
            if (alert.get("labels") or {}).get("drill") == self.label["drill"]
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
    originals: dict[str, str | None] = {}
    try:
        if scenario.prepare is not None:
            apply_overrides(airflow, PREPARERS[scenario.prepare](facts["published"]), originals)
            if originals:
                log(
                    f"[{scenario.name}] prepared ({scenario.prepare}); Variables set for the drill: {', '.join(originals)}"
                )
        return _run(scenario, facts, out, airflow, log)
    finally:
        restore(airflow, originals, log)
        from sandbox.drill import rds

        rds.stop_load()


def _run(scenario: Scenario, facts: dict[str, Any], out: Path, airflow: Airflow, log: Any) -> Outcome:
    published = facts["published"]
    healthy = CHECKS[scenario.recovery_check]
    if not healthy(published) and scenario.restore:
        # A fault the sandbox starts with (its demo) or an earlier drill left: back to the start state first.
        log(f"[{scenario.name}] not healthy before the fault: {RESTORERS[scenario.restore](published)}")
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
        if scenario.schedule_gap_seconds:
            waited = airflow.wait_for_schedule_gap(scenario.runbook, scenario.schedule_gap_seconds)
            log(f"[{scenario.name}] waited {waited:.0f}s for a gap in {scenario.runbook}'s schedule")
        fault_at = time.time()
        fault = INJECTORS[scenario.injector](published)
        log(f"[{scenario.name}] fault: {fault}")
        seen_down = False
        streak_from: float | None = None
        acknowledged = False
        finished = False
        parked_since: dict[str, float] = {}  # approval question -> when the drill first saw its task parked
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
            if scenario.approval and (runs := incident_runs(events, scenario.runbook)):
                for detail in airflow.pending_approvals(scenario.runbook):
                    if ready_to_answer(detail, scenario.approval, runs, fault_at, parked_since, time.monotonic()):
                        status = airflow.answer(detail, scenario.approval)
                        log(
                            f"[{scenario.name}] approval answered {scenario.approval!r} (HTTP {status}), +{time.time() - fault_at:.1f}s"
                        )
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
        if scenario.restore:
            try:
                log(f"[{scenario.name}] restored: {RESTORERS[scenario.restore](published)}")
            except Exception as err:  # reported, never hiding the drill's own outcome
                log(f"[{scenario.name}] restore failed, the sandbox may still be broken: {err!r}")
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
            recovered_what=scenario.recovery_check,
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
    """``python -m sandbox run`` on free ports (what ``make run`` runs) in ``home/airflow``, until it is ready."""
    home.mkdir(parents=True, exist_ok=True)
    return background.start_launcher(
        home / "airflow", log_file=home / "launcher.log", ready_file=home / "ready.json", timeout=timeout
    )


def stop_sandbox(process: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    """Ctrl-C, as a user stops ``make run``; the launcher stops everything it started."""
    background.stop_launcher(process, timeout)
