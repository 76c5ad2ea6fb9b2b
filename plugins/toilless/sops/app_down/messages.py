"""App down: what people read (escalation, approval, timeline, page). Pure; every outside value goes through
``toilless.common.slack`` (escaped, bounded); :func:`toilless.common.reporting.post_message` fits the limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from toilless.common import slack
from toilless.sops.app_down import decide


def alert_summary(alert: Mapping[str, Any] | None) -> str:
    if not alert:
        return "manual run"
    annotations = alert.get("annotations") or {}
    text = f"{alert.get('alertname') or (alert.get('labels') or {}).get('alertname', 'alert')}"
    summary = annotations.get("summary") if isinstance(annotations, Mapping) else None
    return slack.clean(f"{text}: {summary}" if summary else text, 300)


def channels_for_roles(roles: Mapping[str, Mapping[str, str]]) -> list[tuple[str, list[str], list[str]]]:
    """(channel, role names, user groups) per distinct channel, in configuration order."""
    grouped: dict[str, tuple[list[str], list[str]]] = {}
    for role, spec in roles.items():
        names, groups = grouped.setdefault(spec["channel"], ([], []))
        names.append(role)
        if spec.get("user_group"):
            groups.append(spec["user_group"])
    return [(channel, names, groups) for channel, (names, groups) in grouped.items()]


def _target(settings: Mapping[str, Any]) -> str:
    service = settings["service"]
    return f"{service['namespace']}/{service['deployment']}"


def endpoint_lines(verification: Mapping[str, Any]) -> list[slack.Mrkdwn]:
    lines = []
    for row in verification.get("endpoints") or []:
        state = "UNREACHABLE" if row["unreachable"] else f"answers ({row['ok']}/{row['attempts']})"
        failure = f": {row['last_failure']}" if row["unreachable"] and row.get("last_failure") else ""
        lines.append(slack.mrkdwn("{} {} {}{}", row["kind"], slack.code(row["url"]), state, failure))
    return lines


def readiness_line(verification: Mapping[str, Any]) -> slack.Mrkdwn:
    rollout = verification.get("rollout") or {}
    pods = verification.get("pods") or []
    reasons = sorted({reason for pod in pods for reason in pod.get("reasons") or []})
    restarts = sum(int(pod.get("restarts") or 0) for pod in pods)
    return slack.mrkdwn(
        "Deployment: {} of {} ready, revision {}, image {}; pods: {} running, {} restarts{}",
        rollout.get("ready", 0),
        rollout.get("desired", 0),
        rollout.get("revision"),
        slack.code(", ".join(rollout.get("images") or [])),
        sum(1 for pod in pods if pod.get("phase") == "Running"),
        restarts,
        f" ({', '.join(reasons)})" if reasons else "",
    )


def escalation_message(
    settings: Mapping[str, Any], verification: Mapping[str, Any], roles: list[str], groups: list[str]
) -> dict[str, Any]:
    # Mentions are built from checked configuration (S... ids), never from outside text.
    mentions = " ".join(f"<!subteam^{group}>" for group in groups)
    title = f"Outage: {_target(settings)} is unreachable"
    lines = [
        slack.mrkdwn(
            "*{}* verified at {} ({}). For: {}",
            title,
            verification["verified_at"],
            settings["alert_summary"],
            ", ".join(roles),
        ),
        *endpoint_lines(verification),
        readiness_line(verification),
        slack.Mrkdwn("Next: rollout history, logs, then a recovery decision in the run (timeline follows)."),
    ]
    body = "\n".join(("• " + line) for line in lines)
    if mentions:
        body = f"{mentions}\n{body}"
    return {"text": f":rotating_light: {slack.escape(title)}", "blocks": [slack.header(title), slack.section(body)]}


def object_summary(kind: str, obj: Mapping[str, Any]) -> str:
    spec = obj.get("spec") or {}
    if kind == "service":
        ports = ", ".join(f"{p.get('port')}->{p.get('targetPort')}" for p in spec.get("ports") or [])
        return f"Service type {spec.get('type', 'ClusterIP')}, ports {ports or 'none'}"
    hosts = [rule.get("host", "*") for rule in spec.get("rules") or []]
    return f"Ingress hosts {', '.join(map(str, hosts)) or 'none'}"


def approval_text(settings: Mapping[str, Any], recovery: Mapping[str, Any]) -> tuple[str, str]:
    subject = f"Roll back {_target(settings)} to revision {recovery.get('to_revision')}?"
    body = (
        f"The app is down. {recovery['reason']}.\n\nApprove to roll back "
        f"({', '.join(recovery.get('from_images') or [])} -> {', '.join(recovery.get('to_images') or [])}). "
        "No answer in time counts as Reject: nothing changes and on-call is paged."
    )
    return slack.clean(subject, 150), slack.clean(body, 2000)


def timeline(
    settings: Mapping[str, Any],
    verification: Mapping[str, Any],
    escalation: Mapping[str, Any] | None,
    decision: Mapping[str, Any] | None,
    outcome: Mapping[str, Any] | None,
    recovery: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The incident's timeline (verified, escalated, action, recovered) and whether to page."""
    target = _target(settings)
    dry = settings["dry_run"]
    if not verification.get("down"):
        return {
            "title": f"App down: false alarm for {target}",
            "status": "ok",
            "lines": [
                slack.mrkdwn("The app answers: nothing escalated, nothing changed ({})", settings["alert_summary"]),
                *endpoint_lines(verification),
                readiness_line(verification),
            ],
            "recovered": True,
            "page": False,
            "page_reason": "false alarm",
        }
    acted = bool(outcome and outcome.get("acted"))
    status_of_recovery = (recovery or {}).get("status")
    recovered = status_of_recovery == "recovered"
    lines: list[Any] = [
        slack.mrkdwn("verified unreachable at {}", verification["verified_at"]),
        slack.mrkdwn("escalated at {}", (escalation or {}).get("escalated_at", "not sent")),
    ]
    if decision:
        lines.append(slack.mrkdwn("decision: *{}*: {}", decision["action"], decision["reason"]))
        lines.extend(slack.mrkdwn("not chosen: {}", refused) for refused in decision.get("refused") or [])
    if outcome:
        what = "action" if outcome.get("acted") else "no action"
        lines.append(
            slack.mrkdwn(
                "{} at {}: {} ({})", what, outcome.get("action_at", "-"), outcome["action"], outcome.get("reason", "")
            )
        )
    elif decision and decision["action"] in decide.ACTIONS:
        lines.append(
            slack.Mrkdwn(
                "no action: the rollback was not approved (rejected or no answer in time), or the action step failed (see the run)"
            )
        )
    if recovery:
        lines.append(
            slack.mrkdwn(
                "recovered at {} (endpoints answering for {} s)",
                recovery.get("recovered_at"),
                f"{float(recovery.get('sustained_seconds') or 0):.0f}",
            )
            if recovered
            else slack.mrkdwn("NOT recovered by {}: {}", recovery.get("checked_at"), recovery.get("detail", ""))
        )
    lines.extend(endpoint_lines(verification))
    gate_check = ((outcome or {}).get("gate") or {}).get("check")
    if dry:
        page, page_reason = False, "dry run: nothing was changed, no page"
    elif gate_check == "time_policy":
        page, page_reason = False, "inside the maintenance window: nothing changed, no page"
    else:
        page, page_reason = not recovered, "recovered" if recovered else ""
    title = f"App down: {target} " + ("recovered" if recovered else "NOT recovered" if acted else "still down")
    if dry:
        title += " (dry run: nothing was changed)"
    return {
        "title": title,
        "status": "ok" if recovered else "critical",
        "lines": lines,
        "recovered": recovered,
        "page": page,
        "page_reason": page_reason,
    }


def page_text(settings: Mapping[str, Any], report: Mapping[str, Any]) -> str:
    lines = [slack.mrkdwn(":rotating_light: *{}*: escalating again, on-call paged.", report["title"])]
    # The timeline's lines were built with slack.mrkdwn (outside values escaped once) by report_timeline in this run;
    # XCom returns them as plain str, and escaping them again would show "&amp;" in Slack.
    lines.extend(slack.Mrkdwn(slack.truncate(str(line), 1000)) for line in report["lines"][:30])
    return "\n".join(("• " + line) if index else line for index, line in enumerate(lines))
