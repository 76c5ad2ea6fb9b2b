"""The report: title, status, who hears it and the timeline (pure: plain data in, report lines out).

Lines are plain strings (``send_report`` escapes them: server answers and log lines are outside text) except the
log excerpt, a code block built with ``toilless.common.slack``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from toilless.common import slack
from toilless.sops.dns_failover.decide import FAILOVER_NOW, NONE, PAGE, WAIT

NETWORKING = "networking"
ONCALL = "oncall"
MAX_LOG_LINES_SHOWN = 15


def report(
    settings: Mapping[str, Any],
    *,
    found: Mapping[str, Any],
    probed: Mapping[str, Any],
    decision: Mapping[str, Any],
    wait: Mapping[str, Any] | None,
    shutdown: Mapping[str, Any],
    moved: Mapping[str, Any],
    verified: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """``{"title", "status", "lines", "audiences", "outcome"}`` for the run."""
    active, standby = found["active"], found["standby"]
    final = shutdown.get("final") or decision
    lines: list[Any] = []
    if settings.get("dry_run"):
        lines.append("Dry run: nothing was changed.")
    lines += timeline(
        settings,
        found=found,
        probed=probed,
        decision=decision,
        wait=wait,
        shutdown=shutdown,
        moved=moved,
        verified=verified,
    )
    lines.append(f"Provider: {settings['provider']}; incident {settings['incident']}.")
    for note in settings.get("notes") or []:
        lines.append(note)
    active_log = probed.get("active_log") or {}
    if active_log.get("lines"):
        cut = " (older lines cut)" if active_log.get("cut") or len(active_log["lines"]) > MAX_LOG_LINES_SHOWN else ""
        lines.append(slack.mrkdwn("Recent log of {} ({}){}:", active, active_log.get("source"), cut))
        lines.append(slack.code_block("\n".join(active_log["lines"][-MAX_LOG_LINES_SHOWN:]), limit=2500))
    elif active_log.get("error"):
        lines.append(f"Log of {active} could not be read: {active_log['error']}")

    if moved.get("ok") and moved.get("outcome") in ("done", "already_active"):
        outcome = "failed_over"
        status = "warning" if (verified or {}).get("verified") else "critical"
        title = f"DNS failover: {active} -> {standby} done" + (
            " and verified" if (verified or {}).get("verified") else ""
        )
        lines.append(
            f"Networking: please restore {active} (now the standby, shut down or failing) so a standby is there again."
        )
    elif final["action"] == PAGE:
        outcome = "paged"
        status = "critical"
        title = f"DNS: {active} is {final['active_state']} and the standby {standby} is {final['standby_state']}: no failover"
        lines.append("On-call: a person must look now; networking: both servers need attention.")
    elif final["action"] == FAILOVER_NOW:
        outcome = shutdown.get("outcome") or moved.get("outcome") or "not_done"
        status = "warning"
        title = f"DNS: failover {active} -> {standby} not done ({outcome.replace('_', ' ')})"
    elif decision["action"] == WAIT:
        outcome = "recovered"
        status = "ok"
        title = f"DNS: {active} recovered, no failover"
    else:
        outcome = "healthy"
        status = "ok"
        title = f"DNS: {active} answers correctly, nothing to do"
    if settings.get("dry_run"):
        title += " [dry run]"
    audiences = [ONCALL] if outcome == "healthy" else [NETWORKING, ONCALL]
    return {"title": title, "status": status, "lines": lines, "audiences": audiences, "outcome": outcome}


def timeline(
    settings: Mapping[str, Any],
    *,
    found: Mapping[str, Any],
    probed: Mapping[str, Any],
    decision: Mapping[str, Any],
    wait: Mapping[str, Any] | None,
    shutdown: Mapping[str, Any],
    moved: Mapping[str, Any],
    verified: Mapping[str, Any] | None,
) -> list[str]:
    """One line per event, with its time."""
    events: list[str] = []
    alert = settings.get("alert") or {}
    if alert.get("startsAt"):
        events.append(f"{alert['startsAt']} alert {alert.get('alertname') or '?'} fired")
    events.append(
        f"{found['found_at']} active server ({settings['provider']}): {found['active']}; standby {found['standby']}"
    )
    for name, server in probed["servers"].items():
        reasons = "; ".join(server.get("reasons", [])[:3])
        events.append(f"{probed['probed_at']} {name}: {server['state']} ({reasons}); probe {server.get('probe_ms')} ms")
    events.append(f"{decision.get('decided_at', '')} decision: {decision['action']}: {decision['reason']}")
    if wait and wait.get("status"):
        events.append(
            f"{wait.get('ended_at', '')} wait ended: {wait['status']} after {float(wait.get('waited_seconds') or 0):.0f} s, "
            f"{wait.get('looks', 0)} look(s); {found['active']} {wait.get('active_state')}, {found['standby']} {wait.get('standby_state')}"
        )
    final = shutdown.get("final") or {}
    if final and final.get("action") != decision.get("action"):
        events.append(f"final decision: {final['action']}: {final['reason']}")
    if shutdown.get("outcome") not in (None, "not_needed"):
        events.append(
            f"{shutdown.get('at', '')} shutdown of {found['active']}: {shutdown['outcome']}: {shutdown.get('detail')}"
        )
    if shutdown.get("process_check"):
        check = shutdown["process_check"]
        down = "down" if check["state"] == "unreachable" else f"still {check['state']}"
        events.append(f"{found['active']} after the failed shutdown: DNS process {down}")
    if moved.get("outcome") not in (None, "not_needed"):
        forced = " (forced)" if moved.get("forced") else ""
        events.append(
            f"{moved.get('at', '')} failover to {found['standby']}{forced}: {moved['outcome']}: {moved.get('detail')}"
        )
    if verified and verified.get("verified") is not None:
        events.append(f"{verified.get('at', '')} verified: {verified.get('detail')}")
    return events


def decision_summary(decision: Mapping[str, Any]) -> str:
    return f"{decision['action']}: {decision['reason']}" if decision["action"] != NONE else decision["reason"]
