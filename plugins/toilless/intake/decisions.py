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

from toilless.common import slack
from toilless.common.policies import WeeklyWindow
from toilless.incidents.events import incident_key
from toilless.intake.models import Alert
from toilless.intake.routing import Route
from toilless.slack_actions import buttons as slack_buttons


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


def channel_for(environment: str, settings: Mapping[str, Any], *, triage: bool = False) -> str:
    """Prod alerts go to the urgent channel, everything else (and alerts triage decides about first) to the
    non-urgent one."""
    channels = settings.get("channels", {})
    if is_prod(environment, settings) and not triage:
        return channels.get("prod", "urgent")
    return channels.get("non_prod", "non_urgent")


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
# Everything from the alert (labels, annotations, URLs) is outside text: it goes through toilless.common.slack
# (escape, code, link) where the message is built, and the message through fit_message (Slack's limits).
MAX_LABELS_SHOWN = 20
MAX_ANNOTATIONS_SHOWN = 10
MAX_LINKS_SHOWN = 8
MAX_ERRORS_SHOWN = 20


@dataclass(frozen=True)
class AlertFacts:
    """What every intake message says about the alert."""

    alert: Alert
    priority: Priority
    environment: str
    links: Sequence[tuple[str, str]]
    #: Hosts a message may link to (toilless.common.slack.allowed_link_hosts plus the intake's link_hosts).
    link_hosts: frozenset[str] = frozenset()

    @property
    def summary(self) -> str:
        annotations = self.alert.annotations
        return annotations.get("summary") or annotations.get("description") or annotations.get("message") or ""


def link_hosts_for(toilless_settings: Mapping[str, Any], intake_settings: Mapping[str, Any]) -> frozenset[str]:
    """The hosts intake messages may link to: toilless.yaml's (Airflow UI included) and alert_intake.yaml's."""
    extra = {str(host).lower() for host in intake_settings.get("link_hosts", []) or []}
    return slack.allowed_link_hosts(toilless_settings) | extra


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
    lines = [f"Runbook {slack.code(dag_id)} started: run {slack.code(run_id, 250)}" + _for(target)]
    if note:
        lines.append(f":construction: {slack.escape(note)}")
    if paused:
        lines.append(":double_vertical_bar: the DAG is paused in Airflow: the run waits until someone unpauses it")
    return _message(facts, icon=":robot_face:", headline="runbook started", lines=lines, run_link=run_link)


def ack_not_started(facts: AlertFacts, *, dag_id: str, target: str, reason: str, run_link: str = "") -> dict[str, Any]:
    """Routed, but no run now: the target is busy (skipped or queued) or the maintenance window says notify only."""
    lines = [f"Runbook {slack.code(dag_id)}{_for(target)}: {slack.escape(reason)}"]
    return _message(
        facts, icon=":hourglass_flowing_sand:", headline="runbook not started", lines=lines, run_link=run_link
    )


def ack_paused(facts: AlertFacts, *, dag_id: str, target: str) -> dict[str, Any]:
    """Routed to a DAG that is paused in Airflow: no run is created (it would hold the target until an unpause)."""
    lines = [
        f"Runbook {slack.code(dag_id)}{_for(target)} is paused in Airflow: nothing will run. "
        "Handle this alert by hand, or unpause the DAG; a new notification of the alert after that starts it."
    ]
    return _message(facts, icon=":double_vertical_bar:", headline="runbook paused: nothing will run", lines=lines)


def ack_missing(facts: AlertFacts, *, dag_id: str, target: str, why: str) -> dict[str, Any]:
    """Routed to a DAG Airflow does not have (never parsed, a typo in the route, its file removed: stale) or cannot
    start: a person must act. ``why`` comes from the intake (it may hold a route's dag_id) and is escaped."""
    lines = [
        f"Runbook {slack.code(dag_id)}{_for(target)} cannot run: {slack.escape(why)}. Nothing will run. "
        "Handle this alert by hand and fix the route or the DAG; once Airflow has the DAG, the next notification "
        "of this alert starts it."
    ]
    return _message(facts, icon=":warning:", headline="runbook missing", lines=lines)


def ack_no_runbook(facts: AlertFacts) -> dict[str, Any]:
    """No route matches: a person has to handle it; the message carries what the alert said (bounded, saying
    first what was cut, so the note survives whatever Slack's limits cut at the end)."""
    alert = facts.alert
    labels = sorted(alert.labels.items())
    annotations = sorted(alert.annotations.items())
    lines = ["No runbook is routed for this alert: handle it by hand."]
    if len(labels) > MAX_LABELS_SHOWN or len(annotations) > MAX_ANNOTATIONS_SHOWN:
        lines.append(
            f"_Shown: {min(len(labels), MAX_LABELS_SHOWN)} of {len(labels)} labels "
            f"({max(0, len(labels) - MAX_LABELS_SHOWN)} more label(s) cut) and "
            f"{min(len(annotations), MAX_ANNOTATIONS_SHOWN)} of {len(annotations)} annotations "
            f"({max(0, len(annotations) - MAX_ANNOTATIONS_SHOWN)} more annotation(s) cut); "
            "the alert in Alertmanager has all._"
        )
    lines.append(f"Started at {alert.starts_at_utc}, fingerprint {slack.code(alert.fingerprint)}")
    lines.append("Labels:")
    lines += [f"• {slack.code(f'{name}={value}', 150)}" for name, value in labels[:MAX_LABELS_SHOWN]]
    lines += [
        f"{slack.escape(name, 60)}: {slack.escape(value, 600)}" for name, value in annotations[:MAX_ANNOTATIONS_SHOWN]
    ]
    return _message(facts, icon=":grey_question:", headline="no runbook", lines=lines)


def resolved_notice(facts: AlertFacts, *, dag_id: str, run_id: str, run_link: str, state: str) -> dict[str, Any]:
    """The alert resolved while its run is still going (or before its queued run started)."""
    ended = facts.alert.ends_at_utc or "now"
    lines = [
        f"Resolved at {ended} while runbook {slack.code(dag_id)} run {slack.code(run_id, 250)} is "
        f"{slack.escape(state)}."
    ]
    return _message(
        facts, icon=":white_check_mark:", headline="resolved", lines=lines, run_link=run_link, answerable=False
    )


def queued_started(
    facts: AlertFacts, *, dag_id: str, run_id: str, run_link: str, target: str, note: str = ""
) -> dict[str, Any]:
    """A queued alert's run started now that its target is free."""
    lines = [
        f"Queued runbook {slack.code(dag_id)} started now that {slack.code(target or dag_id)} is free: "
        f"run {slack.code(run_id, 250)}"
    ]
    if note:
        lines.append(f":construction: {slack.escape(note)}")
    return _message(facts, icon=":robot_face:", headline="queued runbook started", lines=lines, run_link=run_link)


def rejected_notice(
    errors: Sequence[str],
    *,
    receiver: str,
    alertnames: Sequence[str],
    suppressed: int = 0,
    interval_minutes: float = 10,
) -> dict[str, Any]:
    """An authenticated delivery the intake refused (4xx): Alertmanager will not retry, so a person must look.

    At most one such message per receiver per ``interval_minutes``: ``suppressed`` refusals since the last one were
    counted, not posted.
    """
    names = sorted(set(alertnames))
    shown = ", ".join(slack.escape(name, 100) for name in names[:10]) or "unknown"
    if len(names) > 10:
        shown += f" and {len(names) - 10} more"
    lines = [
        f":x: Alert intake refused a notification from receiver {slack.code(receiver or '?', 100)} ({shown}); "
        "nothing was started."
    ]
    lines += [f"• {slack.escape(line, 300)}" for line in errors[:MAX_ERRORS_SHOWN]]
    if len(errors) > MAX_ERRORS_SHOWN:
        lines.append(f"_{len(errors) - MAX_ERRORS_SHOWN} more problem(s) cut; the HTTP answer lists them._")
    if suppressed:
        lines.append(
            f"_{suppressed} more refusal(s) in the last {interval_minutes:g} min were not posted (at most one message "
            f"per receiver and a few in all per {interval_minutes:g} min); the API server log has each._"
        )
    return slack.fit_message({"text": _text(lines), "blocks": _sections(lines)})


def _for(target: str) -> str:
    return f" for {slack.code(target)}" if target else ""


def _message(
    facts: AlertFacts,
    *,
    icon: str,
    headline: str,
    lines: Sequence[str],
    run_link: str = "",
    answerable: bool = True,
) -> dict[str, Any]:
    """``lines`` are mrkdwn already built from escaped parts; everything from ``facts`` is escaped here.

    Every message names its incident (the id the REST API, the timeline and the handoff use); a firing alert's
    message also carries Acknowledge and Silence 1h / 4h buttons (docs/slack_actions.md). The buttons come right
    after the fields, so no cut of a long message (fit_message cuts from the end) can drop them.
    """
    alert = facts.alert
    incident = _incident_of(alert)
    hosts = facts.link_hosts
    plain_title = f"{facts.priority.code} [{facts.environment}] {alert.alertname}: {headline}"
    title = (
        f"{facts.priority.code} [{slack.escape(facts.environment, 60)}] {slack.escape(alert.alertname, 150)}: "
        f"{headline}"
    )
    summary = [slack.escape(facts.summary, 1000)] if facts.summary else []
    links = [slack.link(run_link, "Open the run", hosts)] if run_link else []
    links += [slack.link(url, name, hosts) for name, url in facts.links[:MAX_LINKS_SHOWN]]
    if len(facts.links) > MAX_LINKS_SHOWN:
        links.append(f"_{len(facts.links) - MAX_LINKS_SHOWN} more link(s) cut_")
    text_lines = [f"{icon} {title}", *summary, facts.priority.describe(), *lines, *links]
    fields = [
        f"*Priority:* {facts.priority.code} ({slack.escape(facts.priority.name, 40)})",
        f"*Respond / escalate:* {_minutes(facts.priority.respond_minutes)} / "
        f"{_minutes(facts.priority.escalate_minutes)}",
        f"*Environment:* {slack.escape(facts.environment, 100)}",
        f"*Status:* {alert.status}",
    ]
    if incident:
        fields.append(f"*Incident:* {slack.code(incident)}")
    blocks: list[dict[str, Any]] = [slack.header(plain_title), slack.fields_section(*fields)]
    if incident and answerable and alert.status == "firing":
        # Every intake alert came from Alertmanager, so Silence is offered with Acknowledge.
        blocks.append(slack_buttons.actions_block(slack_buttons.incident_buttons(incident, alertmanager=True)))
    blocks += _sections([*summary, *lines])
    if links:
        blocks.append(slack.context(" · ".join(links)))
    message = slack.fit_message({"text": _text(text_lines), "blocks": blocks})
    if incident:
        # Not sent to Slack (the outbox posts text and blocks): once posted, the outbox records the message on this
        # incident's timeline, the system's first word to a person about it.
        message["incident"] = incident
    return message


def _incident_of(alert: Alert) -> str:
    """The incident id of this firing (toilless.incidents.events.incident_key); empty if it cannot be derived."""
    try:
        return incident_key(alert.fingerprint, alert.starts_at_utc) if alert.fingerprint else ""
    except ValueError:
        return ""


def _text(lines: Sequence[str]) -> str:
    """The notification text: the same escaped lines, bounded so a cut never splits an escape sequence oddly."""
    kept: list[str] = []
    size = 0
    for index, line in enumerate(lines):
        if size + len(line) + 1 > slack.MAX_SECTION_TEXT:
            kept.append(f"_{len(lines) - index} more line(s) cut_")
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join(kept)


def _sections(lines: Sequence[str]) -> list[dict[str, Any]]:
    """Lines packed into section blocks within Slack's per-text limit, split between lines (never inside an escape
    or a code span)."""
    blocks: list[dict[str, Any]] = []
    current: list[str] = []
    size = 0
    for line in lines:
        line = line[: slack.MAX_SECTION_TEXT - 100]  # every caller bounds its lines; this keeps the limit certain
        if current and size + len(line) + 1 > slack.MAX_SECTION_TEXT - 100:
            blocks.append(slack.section("\n".join(current)))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        blocks.append(slack.section("\n".join(current)))
    return blocks[: slack.MAX_BLOCKS - 5]


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
