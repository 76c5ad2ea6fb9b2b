"""App down: is it down, and which recovery: plain functions over plain data (no Airflow, no network).

The lesson of the outage (SOPS.md, "Application down"): a QA build went to production, a restart did not help, a
redeploy of the previous release did. So a rollout shortly before the outage is the first suspect, and a restart
is only the answer when nothing changed and the pods are crash-looping or hung.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

ROLLBACK = "rollback"
RESTART = "restart"
SCALE = "scale"
ESCALATE_ONLY = "escalate_only"
ACTIONS = (ROLLBACK, RESTART, SCALE)


# -- verify ------------------------------------------------------------------------------------------------------
def endpoint_verdicts(probes: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per endpoint (kind public/internal, url): answered in how many of its attempts, and the last failure seen.

    An endpoint is *unreachable* when none of its attempts got an answer below 500 within the timeout: one good
    answer in the interval means the app is (at least partly) serving.
    """
    by_url: dict[str, dict[str, Any]] = {}
    for probe in probes:
        row = by_url.setdefault(
            probe["url"],
            {"url": probe["url"], "kind": probe.get("kind", "public"), "attempts": 0, "ok": 0, "last_failure": ""},
        )
        row["attempts"] += 1
        if probe.get("ok"):
            row["ok"] += 1
        else:
            row["last_failure"] = str(probe.get("error") or f"HTTP {probe.get('status')}")
    for row in by_url.values():
        row["unreachable"] = row["ok"] == 0
    return list(by_url.values())


def is_down(endpoints: Sequence[Mapping[str, Any]]) -> bool:
    """Down when any public endpoint (else any endpoint, when none is public) never answered."""
    public = [row for row in endpoints if row["kind"] == "public"] or list(endpoints)
    return any(row["unreachable"] for row in public)


# -- decide ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RecoveryPolicy:
    rollout_window: timedelta
    allow_rollback: bool = True
    allow_restart: bool = True
    allow_scale: bool = True
    min_replicas: int = 1
    max_replicas: int = 10
    scale_step: int = 2
    saturation_pct: float = 90.0


@dataclass(frozen=True)
class Recovery:
    action: str
    reason: str
    to_revision: int | None = None
    to_images: list[str] = field(default_factory=list)
    from_images: list[str] = field(default_factory=list)
    replicas: int | None = None
    refused: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_time(moment: Any) -> datetime | None:
    if not isinstance(moment, str) or not moment:
        return None
    try:
        parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def decide_recovery(evidence: Mapping[str, Any], *, outage_started_at: datetime, policy: RecoveryPolicy) -> Recovery:
    """Roll back, restart, scale or escalate only, with one sentence citing the evidence.

    ``evidence``: ``revisions`` (rollout history, oldest first), ``status`` (rollout status: revision, images,
    desired), ``pods`` (pod health), ``restarted_at`` (the template's restartedAt), ``usage_pct`` (CPU usage / limit,
    None without metrics).
    """
    revisions = [row for row in evidence.get("revisions") or [] if isinstance(row.get("revision"), int)]
    status = evidence.get("status") or {}
    pods = list(evidence.get("pods") or [])
    current_images = list(status.get("images") or [])
    current_revision = status.get("revision")
    current = next((row for row in revisions if row["revision"] == current_revision), None)
    if current is None and revisions:
        current = revisions[-1]
    refused: list[str] = []
    rolled_out_at = parse_time(current.get("created")) if current else None
    recent = rolled_out_at is not None and outage_started_at - policy.rollout_window <= rolled_out_at
    crash = [pod for pod in pods if pod.get("crash_loop") or pod.get("oom_killed") or pod.get("image_pull_error")]
    hung = [pod for pod in pods if not pod.get("ready")]
    restarted_at = parse_time(evidence.get("restarted_at"))
    restarted_in_incident = restarted_at is not None and restarted_at >= outage_started_at - timedelta(minutes=5)

    if recent:
        assert current is not None
        assert rolled_out_at is not None
        # Never back to the same image: a restart makes a new revision with the image it already had.
        older = [
            row
            for row in revisions
            if row["revision"] < current["revision"] and row["images"] and row["images"] != current_images
        ]
        change = f"revision {current['revision']} ({', '.join(current_images) or 'no image'})"
        cause = f", change-cause {current['change_cause']!r}" if current.get("change_cause") else ""
        if older:
            target = older[-1]
            restart_note = "a restart would run the same images again" + (
                f" (already restarted at {restarted_at.isoformat()} without effect)" if restarted_in_incident else ""
            )
            refused.append(f"restart: {restart_note}")
            if policy.allow_rollback:
                return Recovery(
                    ROLLBACK,
                    f"{change}{cause} rolled out at {rolled_out_at.isoformat()}, within "
                    f"{_minutes(policy.rollout_window)} before the outage started at {outage_started_at.isoformat()}: "
                    f"roll back to revision {target['revision']} ({', '.join(target['images'])})",
                    to_revision=target["revision"],
                    to_images=list(target["images"]),
                    from_images=current_images,
                    refused=refused,
                )
            return Recovery(
                ESCALATE_ONLY,
                f"{change}{cause} rolled out just before the outage, but automatic rollback is switched off: a "
                f"person should roll back to revision {target['revision']} ({', '.join(target['images'])})",
                to_revision=target["revision"],
                to_images=list(target["images"]),
                from_images=current_images,
                refused=refused,
            )
        refused.append(f"rollback: no earlier revision runs an image other than {', '.join(current_images)}")

    if crash or (pods and len(hung) == len(pods)):
        if restarted_in_incident:
            assert restarted_at is not None
            refused.append(f"restart: already restarted at {restarted_at.isoformat()} in this incident")
            return Recovery(
                ESCALATE_ONLY,
                f"{len(hung)} of {len(pods)} pods not ready ({_pod_reasons(crash or hung)}), but the Deployment was "
                f"already restarted at {restarted_at.isoformat()} in this incident: another restart would not help",
                from_images=current_images,
                refused=refused,
            )
        what = "no rollout within the window" if not recent else "no earlier image to roll back to"
        if policy.allow_restart:
            return Recovery(
                RESTART,
                f"{what}, and {len(hung)} of {len(pods)} pods are not ready ({_pod_reasons(crash or hung)}): restart",
                from_images=current_images,
                refused=refused,
            )
        refused.append("restart: switched off by configuration")

    usage = evidence.get("usage_pct")
    desired = int(status.get("desired") or 0)
    if pods and not hung and isinstance(usage, (int, float)) and usage >= policy.saturation_pct:
        target = min(policy.max_replicas, max(policy.min_replicas, desired + policy.scale_step))
        if target > desired and policy.allow_scale:
            return Recovery(
                SCALE,
                f"all {len(pods)} pods ready but CPU at {usage:.0f}% of their limits (>= {policy.saturation_pct:g}%): "
                f"scale from {desired} to {target} replicas",
                replicas=target,
                from_images=current_images,
                refused=refused,
            )
        refused.append(
            f"scale: already at {desired} replicas (max {policy.max_replicas})"
            if target <= desired
            else "scale: switched off by configuration"
        )

    health = f"{len(pods) - len(hung)} of {len(pods)} pods ready" if pods else "no pods found"
    return Recovery(
        ESCALATE_ONLY,
        f"no rollout within {_minutes(policy.rollout_window)} before the outage, {health}, nothing crash-looping or "
        "saturated: nothing safe to do automatically; escalated with the evidence",
        from_images=current_images,
        refused=refused,
    )


def _pod_reasons(pods: Sequence[Mapping[str, Any]]) -> str:
    reasons: list[str] = []
    for pod in pods:
        for reason in pod.get("reasons") or ["not ready"]:
            if reason not in reasons:
                reasons.append(str(reason))
    restarts = sum(int(pod.get("restarts") or 0) for pod in pods)
    return ", ".join(reasons[:4]) + (f", {restarts} restarts" if restarts else "")


def _minutes(span: timedelta) -> str:
    minutes = span.total_seconds() / 60
    return f"{minutes:g} min"


def usage_pct(metrics: Sequence[Mapping[str, Any]], cpu_limit_millis: float | None) -> float | None:
    """Mean CPU usage of the pods as a percentage of their CPU limit (None without metrics or limit)."""
    if not metrics or not cpu_limit_millis:
        return None
    values = []
    for pod in metrics:
        total = sum(cpu_millis(c.get("usage", {}).get("cpu")) or 0.0 for c in pod.get("containers") or [])
        values.append(100.0 * total / cpu_limit_millis)
    return sum(values) / len(values) if values else None


def cpu_millis(quantity: Any) -> float | None:
    """A Kubernetes CPU quantity ("250m", "1", "1500000n", "0.5") in millicores; None when malformed."""
    if not isinstance(quantity, str) or not quantity or len(quantity) > 32:
        return None
    units = {"n": 1e-6, "u": 1e-3, "m": 1.0}
    try:
        if quantity[-1] in units:
            value = float(quantity[:-1]) * units[quantity[-1]]
        else:
            value = float(quantity) * 1000.0
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


# -- the path ----------------------------------------------------------------------------------------------------
def needs_approval(action: str, *, environment: str, automatic_rollback_in_prod: bool, dry_run: bool) -> bool:
    """A rollback in prod waits for a person unless policy allows it automatically (a dry run changes nothing)."""
    return action == ROLLBACK and environment == "prod" and not automatic_rollback_in_prod and not dry_run


def recovered(rollout: Mapping[str, Any], endpoints_ok_for_seconds: float, sustain_seconds: float) -> bool:
    return bool(rollout.get("complete")) and endpoints_ok_for_seconds >= sustain_seconds
