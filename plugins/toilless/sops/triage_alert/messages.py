"""Triage alert: what Slack is told. Pure (no Airflow import).

Report lines are plain strings wherever they quote outside text (labels, evidence from logs and servers, reasons):
``toilless.common.reporting.render_report`` escapes them; the owner's message is built with ``toilless.common.slack``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from toilless.common import slack
from toilless.common.redaction import mask_secrets

MAX_LABELS_SHOWN = 20
MAX_NOTICES_SHOWN = 10
MAX_COUNTS_SHOWN = 15

_TITLES = {
    "noise": "Alert triage: noise, acknowledged",
    "known_cause": "Alert triage: known cause, dismissed",
    "real": "Alert triage: real, runbook started",
}


def title(verdict: Mapping[str, Any], *, dry_run: bool) -> str:
    text = _TITLES.get(str(verdict.get("verdict")), "Alert triage")
    if verdict.get("verdict") == "real" and not verdict.get("runbook_dag_id"):
        text = "Alert triage: real"
    if verdict.get("verdict") == "known_cause" and verdict.get("owner_notices"):
        text = "Alert triage: known cause, owners told"
    return f"{text} (dry run: nothing was changed)" if dry_run else text


def _labels_line(alert: Mapping[str, Any]) -> str:
    labels = alert.get("labels") or {}
    shown = [f"{k}={v}" for k, v in sorted(labels.items())[:MAX_LABELS_SHOWN]]
    more = len(labels) - len(shown)
    return "labels: " + ", ".join(shown) + (f" (+{more} more)" if more > 0 else "")


def report_lines(
    settings: Mapping[str, Any], verdict: Mapping[str, Any], silence: Mapping[str, Any] | None
) -> list[str]:
    alert = settings["alert"]
    lines = [
        f"alert: {alert.get('alertname', '?')} (rule {settings['rule']})",
        _labels_line(alert),
        # The reason is Toilless' own text and the rule's configured response (masking would eat "token: refresh").
        f"verdict: {verdict['verdict']}: {verdict['reason']}",
        *(f"evidence: {mask_secrets(line)}" for line in verdict.get("evidence") or []),
    ]
    if verdict["verdict"] == "noise":
        silence = silence or {}
        if silence.get("silenced"):
            again = " (already in place)" if silence.get("reused") else ""
            lines.append(
                f"silenced in Alertmanager for {silence['minutes']} min until {silence['ends_at']}: "
                f"silence {silence['silence_id']}{again}"
            )
        elif silence.get("error"):
            lines.append(f"NOT silenced: {silence['error']}")
        else:
            lines.append(f"not silenced: {silence.get('reason', 'unknown')}")
    elif verdict["verdict"] == "known_cause":
        lines.append(f"response: {verdict['response']}")
        if verdict.get("owner_channel"):
            lines.append(f"owner told in {verdict['owner_channel']}")
        for notice in (verdict.get("owner_notices") or [])[:MAX_NOTICES_SHOWN]:
            what = "owner unknown (add to the owner map)" if notice.get("unowned") else "owner"
            lines.append(f"told {notice['channel']} ({what}): {_counts(notice['counts'])}")
        if verdict.get("unknown_owners"):
            lines.append(f"nobody is known to own: {_counts(verdict['unknown_owners'])}")
    elif verdict.get("start_runbook"):
        lines.append(
            f"runbook {verdict['runbook_dag_id']} started for this alert as run {verdict['runbook_run_id']} "
            "(once per alert: a repeat finds that run)"
        )
    elif verdict.get("skip_reason"):
        lines.append(f"runbook not started: {verdict['skip_reason']}")
    else:
        lines.append("no runbook is routed for this alert: a person must look")
    lines.extend(settings.get("notes") or [])
    return lines


def owner_message(settings: Mapping[str, Any], verdict: Mapping[str, Any]) -> dict[str, Any]:
    """To a known cause's owner: which alert, the cause and the documented response."""
    alert = settings["alert"]
    text = slack.mrkdwn(
        "*Alert triage: known cause {}* for {}\n{}\n{}",
        slack.code(verdict.get("cause", "")),
        slack.code(alert.get("alertname", "?")),
        slack.escape(verdict.get("response", "")),
        slack.escape(_labels_line(alert)),
    )
    return {"text": text, "blocks": [slack.section(text)]}


def _counts(counts: Mapping[str, int]) -> str:
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    shown = ", ".join(f"{key or '(not named)'} {n}x" for key, n in ordered[:MAX_COUNTS_SHOWN])
    more = len(ordered) - MAX_COUNTS_SHOWN
    return shown + (f" (+{more} more)" if more > 0 else "")


def counted_owner_message(
    settings: Mapping[str, Any], verdict: Mapping[str, Any], notice: Mapping[str, Any]
) -> dict[str, Any]:
    """To one owner of a counted known cause (e.g. a topic's team): which alert, how many of theirs, what to do."""
    alert = settings["alert"]
    heading = "owner unknown for" if notice.get("unowned") else "yours:"
    text = slack.mrkdwn(
        "*Alert triage: {} seen {}* for {}\n{} {}\n{}",
        slack.code(verdict.get("cause", "")),
        slack.escape(verdict.get("counted", "")),
        slack.code(alert.get("alertname", "?")),
        heading,
        slack.escape(_counts(notice.get("counts") or {})),
        slack.escape(verdict.get("response", "")),
    )
    return {"text": text, "blocks": [slack.section(text)]}
