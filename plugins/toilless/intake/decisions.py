"""What the intake decides about an alert besides its route, and the Slack messages that say so. Pure, no Airflow.

Severity → P0-P3 with response and escalation targets, the environment and hence the channel (prod pages, the rest
waits for working hours), the dashboard and log links for that environment and service, and whether the maintenance
window turns a run into a dry run or a notification only (SOPS.md, "Alert handling").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from toilless.intake.models import Alert
from toilless.intake.routing import Route
from toilless.policies import WeeklyWindow

_SECTION_LIMIT = 2900


@dataclass(frozen=True)
class Priority:
    code: str  # P0..P3
    name: str
    respond_minutes: int
    escalate_minutes: int

    def describe(self) -> str:
        return (
            f"{self.code} {self.name}: respond within {_minutes(self.respond_minutes)}, "
            f"escalate after {_minutes(self.escalate_minutes)}"
        )


@dataclass(frozen=True)
class RunMode:
    """How a routed alert starts its DAG now: ``start`` False means notify only."""

    start: bool
    dry_run: bool
    note: str = ""


def priority_for(labels: Mapping[str, str], settings: Mapping[str, Any]) -> Priority:
    """P0-P3 from a ``priority`` label (P0..P3) or the ``severity`` label through the configured map."""
    severity = settings.get("severity", {})
    priorities = settings.get("priorities", {})
    code = ""
    explicit = labels.get(severity.get("priority_label", "priority"), "").strip().upper()
    if explicit in priorities:
        code = explicit
    if not code:
        level = labels.get(severity.get("label", "severity"), "").strip().lower()
        code = str(severity.get("map", {}).get(level, severity.get("default", "P2"))).upper()
    spec = priorities.get(code) or {"name": "unknown", "respond_minutes": 60, "escalate_minutes": 240}
    return Priority(code, str(spec["name"]), int(spec["respond_minutes"]), int(spec["escalate_minutes"]))


def environment_for(labels: Mapping[str, str], settings: Mapping[str, Any]) -> str:
    """The alert's environment: a label (environment, env, ...) or the ``<Name>-<env>-<scope>`` alertname form."""
    spec = settings.get("environment", {})
    for label in spec.get("labels", ["environment", "env"]):
        if labels.get(label):
            return labels[label].strip()
    pattern = spec.get("alertname_pattern")
    if pattern:
        found = re.match(pattern, labels.get("alertname", ""))
        if found and found.groupdict().get("environment"):
            return found["environment"].strip()
    return str(spec.get("default", "unknown"))


def is_prod(environment: str, settings: Mapping[str, Any]) -> bool:
    prod = settings.get("environment", {}).get("prod", ["prod", "production"])
    return environment.lower() in {str(name).lower() for name in prod}


def channel_for(environment: str, settings: Mapping[str, Any]) -> str:
    """Prod alerts go to the urgent channel, everything else to the non-urgent one."""
    channels = settings.get("channels", {})
    return channels.get("prod", "urgent") if is_prod(environment, settings) else channels.get("non_prod", "non_urgent")


def links_for(alert: Alert, environment: str, external_url: str, settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(title, url) links an on-call needs: configured dashboards/logs for this environment and service, the
    alert's source expression and a prefilled Alertmanager silence."""
    service_label = settings.get("service_label", "service")
    service = alert.labels.get(service_label, "")
    values = _Template({**alert.labels, "environment": environment, "service": service})
    found: list[tuple[str, str]] = []
    for entry in settings.get("links", []) or []:
        envs = entry.get("environments")
        services = entry.get("services")
        if envs and environment not in envs:
            continue
        if services and service not in services:
            continue
        url = str(entry.get("url", "")).format_map(values)
        if url:
            found.append((str(entry.get("title", "link")), url))
    if alert.generatorURL:
        found.append(("Alert source", alert.generatorURL))
    if external_url:
        matchers = ",".join(f'{name}="{value}"' for name, value in sorted(alert.labels.items()))
        found.append(("Silence", f"{external_url.rstrip('/')}/#/silences/new?filter={quote('{' + matchers + '}')}"))
    return found


def run_mode(route: Route, moment: datetime, window: WeeklyWindow | None) -> RunMode:
    """Inside the maintenance window a run starts as a dry run (or not at all) unless the route says ``run``."""
    if route.dry_run:
        return RunMode(True, True, "this route always starts dry runs")
    if window is None or not window.contains(moment) or route.during_maintenance == "run":
        return RunMode(True, False)
    where = f"maintenance window ({window.describe()})"
    if route.during_maintenance == "notify_only":
        return RunMode(False, True, f"{where}: notify only, no run started")
    return RunMode(True, True, f"{where}: started as a dry run, nothing will be changed")


# -- Slack messages ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AlertFacts:
    """What every intake message says about the alert."""

    alert: Alert
    priority: Priority
    environment: str
    links: Sequence[tuple[str, str]]

    @property
    def summary(self) -> str:
        annotations = self.alert.annotations
        return annotations.get("summary") or annotations.get("description") or annotations.get("message") or ""


def ack_started(
    facts: AlertFacts,
    *,
    dag_id: str,
    run_id: str,
    run_link: str,
    target: str,
    note: str = "",
    paused: bool = False,
) -> dict[str, Any]:
    """The runbook was started for this alert."""
    lines = [f"Runbook `{dag_id}` started: run `{run_id}`" + (f" for `{target}`" if target else "")]
    if note:
        lines.append(f":construction: {note}")
    if paused:
        lines.append(":double_vertical_bar: the DAG is paused in Airflow: the run waits until someone unpauses it")
    return _message(facts, icon=":robot_face:", headline="runbook started", lines=lines, run_link=run_link)


def ack_not_started(facts: AlertFacts, *, dag_id: str, target: str, reason: str, run_link: str = "") -> dict[str, Any]:
    """Routed, but no run now: the target is busy (skipped or queued) or the maintenance window says notify only."""
    lines = [f"Runbook `{dag_id}`" + (f" for `{target}`" if target else "") + f": {reason}"]
    return _message(
        facts, icon=":hourglass_flowing_sand:", headline="runbook not started", lines=lines, run_link=run_link
    )


def ack_no_runbook(facts: AlertFacts) -> dict[str, Any]:
    """No route matches: a person has to handle it; the message carries everything the alert said."""
    labels = ", ".join(f"{name}={value}" for name, value in sorted(facts.alert.labels.items()))
    lines = ["No runbook is routed for this alert: handle it by hand.", f"Labels: `{labels}`"]
    lines += [f"{name}: {value}" for name, value in sorted(facts.alert.annotations.items())]
    lines.append(f"Started at {facts.alert.starts_at_utc}, fingerprint `{facts.alert.fingerprint}`")
    return _message(facts, icon=":grey_question:", headline="no runbook", lines=lines, run_link="")


def resolved_notice(facts: AlertFacts, *, dag_id: str, run_id: str, run_link: str, state: str) -> dict[str, Any]:
    """The alert resolved while its run is still going (or before its queued run started)."""
    ended = facts.alert.ends_at_utc or "now"
    lines = [f"Resolved at {ended} while runbook `{dag_id}` run `{run_id}` is {state}."]
    return _message(facts, icon=":white_check_mark:", headline="resolved", lines=lines, run_link=run_link)


def queued_started(
    facts: AlertFacts, *, dag_id: str, run_id: str, run_link: str, target: str, note: str = ""
) -> dict[str, Any]:
    """A queued alert's run started now that its target is free."""
    lines = [f"Queued runbook `{dag_id}` started now that `{target or dag_id}` is free: run `{run_id}`"]
    if note:
        lines.append(f":construction: {note}")
    return _message(facts, icon=":robot_face:", headline="queued runbook started", lines=lines, run_link=run_link)


def rejected_notice(errors: Sequence[str], *, receiver: str, alertnames: Sequence[str]) -> dict[str, Any]:
    """An authenticated delivery the intake refused (4xx): Alertmanager will not retry, so a person must look."""
    names = ", ".join(sorted(set(alertnames))) or "unknown"
    body = "\n".join(f"• {line}" for line in errors[:20])
    text = (
        f":x: Alert intake refused a notification from receiver `{receiver or '?'}` ({names}); "
        f"nothing was started.\n{body}"
    )
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": chunk}} for chunk in _chunks(text)],
    }


def _message(facts: AlertFacts, *, icon: str, headline: str, lines: Sequence[str], run_link: str) -> dict[str, Any]:
    alert = facts.alert
    title = f"{facts.priority.code} [{facts.environment}] {alert.alertname}: {headline}"
    text_lines = [f"{icon} {title}"]
    if facts.summary:
        text_lines.append(facts.summary)
    text_lines.append(facts.priority.describe())
    text_lines += list(lines)
    if run_link:
        text_lines.append(f"Run: {run_link}")
    text_lines += [f"{name}: {url}" for name, url in facts.links]
    fields = [
        f"*Priority:* {facts.priority.code} ({facts.priority.name})",
        f"*Respond / escalate:* {_minutes(facts.priority.respond_minutes)} / "
        f"{_minutes(facts.priority.escalate_minutes)}",
        f"*Environment:* {facts.environment}",
        f"*Status:* {alert.status}",
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": field} for field in fields]},
    ]
    body = "\n".join(([facts.summary] if facts.summary else []) + list(lines))
    blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": chunk}} for chunk in _chunks(body)]
    link_parts = ([f"<{run_link}|Open the run>"] if run_link else []) + [f"<{url}|{name}>" for name, url in facts.links]
    if link_parts:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(link_parts)[:2900]}]})
    return {"text": "\n".join(text_lines), "blocks": blocks}


class _Template(dict):
    """format_map values where an unknown placeholder renders empty instead of raising."""

    def __missing__(self, key: str) -> str:
        return ""


def _minutes(value: int) -> str:
    if value % 1440 == 0:
        return f"{value // 1440} d"
    if value % 60 == 0:
        return f"{value // 60} h"
    return f"{value} min"


def _chunks(text: str) -> list[str]:
    return [text[start : start + _SECTION_LIMIT] for start in range(0, len(text), _SECTION_LIMIT)] or [""]
