"""The report: what was measured, found, decided, done and verified; and who hears it. Pure.

Lines are plain strings (outside text: pod names, dependency errors, PromQL answers): the common report escapes them
and keeps the message within Slack's limits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: Pods listed with their figures; the rest are counted.
PODS_LISTED = 10


def title(settings: Mapping[str, Any], decision: Mapping[str, Any]) -> str:
    dry = " (dry run: nothing was changed)" if settings.get("dry_run") else ""
    return f"Service error rate: {settings['service']['key']} {decision['severity']}{dry}"


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:,.0f} ms"


def pod_lines(metrics: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = []
    for pod, m in list(metrics.items())[:PODS_LISTED]:
        ratio = m.get("error_ratio")
        saturation = m.get("saturation")
        lines.append(
            f"  {pod}: {m.get('requests') or 0:,.0f} requests, {m.get('errors') or 0:,.0f} 5xx"
            + (f" ({ratio:.1%})" if ratio is not None else "")
            + f", p95 {_ms(m.get('latency_p95_seconds'))}"
            + (f", saturation {saturation:.0%}" if saturation is not None else "")
        )
    if len(metrics) > PODS_LISTED:
        lines.append(f"  … and {len(metrics) - PODS_LISTED} more pod(s)")
    return lines


def report_lines(
    settings: Mapping[str, Any],
    measurement: Mapping[str, Any],
    pods: Mapping[str, Any],
    dependencies: Sequence[Mapping[str, Any]],
    decision: Mapping[str, Any],
    outcome: Mapping[str, Any],
    verification: Mapping[str, Any] | None,
) -> list[str]:
    window_minutes = float(measurement["window_seconds"]) / 60
    lines = [f"Verdict: {decision['severity']}: {decision['reason']}"]
    lines.append(f"Last {window_minutes:g} min per pod (most 5xx first):")
    lines.extend(pod_lines(measurement["metrics"]) or ["  no traffic series found for the Deployment's pods"])
    health = list(pods.get("pods") or [])
    unhealthy = [pod for pod in health if pod.get("unhealthy")]
    lines.append(
        f"Pods: {pods.get('ready_replicas', 0)} ready of {pods.get('replicas', 0)} desired; "
        + (f"{len(unhealthy)} unhealthy" if unhealthy else "all healthy")
    )
    for pod in unhealthy[:PODS_LISTED]:
        reasons = ", ".join(pod.get("reasons") or []) or ("not ready" if not pod.get("ready") else "restarting")
        lines.append(f"  {pod['name']}: {pod['phase']}, {reasons}, {pod['restarts']} restarts")
    for dependency in dependencies:
        state = "ok" if dependency.get("ok") else "FAILED"
        lines.append(
            f"Dependency {dependency['name']} ({dependency['kind']}): {state}: {dependency.get('detail') or ''}"
        )
    if decision["action"] in ("restart", "scale"):
        prefix = "Action: " if outcome.get("acted") else "Action not taken: "
        if outcome.get("already_done"):
            prefix = "Action already done for this incident: "
        lines.append(prefix + str(outcome.get("reason") or ""))
    if verification and verification.get("verified"):
        recovered = verification.get("recovered")
        word = "recovered" if recovered else "not recovered" if recovered is False else "no traffic yet to tell"
        lines.append(f"Verification (same PromQL since the action): {word}: {verification.get('reason')}")
    return lines + list(settings.get("notes") or [])


def status(decision: Mapping[str, Any], outcome: Mapping[str, Any], verification: Mapping[str, Any] | None) -> str:
    if decision["severity"] == "noise":
        return "ok"
    if verification and verification.get("recovered"):
        return "ok"
    return "critical" if decision.get("escalate") else "warning"


def channels(
    settings: Mapping[str, Any],
    decision: Mapping[str, Any],
    outcome: Mapping[str, Any],
    verification: Mapping[str, Any] | None,
) -> list[str]:
    """The report channel always; the owning team when it must look (or the action did not help); the escalation
    channel when the service is failing and nothing has fixed it."""
    names = settings["channels"]
    recovered = bool(verification and verification.get("recovered"))
    not_recovered = bool(verification and verification.get("recovered") is False)
    wanted = [names["report"]]
    if decision.get("notify_owner") or not_recovered:
        wanted.append(names["owner"])
    if decision.get("escalate") and not recovered:
        wanted.append(names["escalation"])
    return list(dict.fromkeys(wanted))
