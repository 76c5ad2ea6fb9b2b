"""Triage alert: the judgement, plain functions over plain data (no Airflow import at any level).

The on-call rule (SOPS.md, "Alert handling"): look at how widespread the problem is; one error is acknowledged and
left, many are investigated; frequently seen alerts have known answers. So, in this order:

1. a **known cause** whose log pattern is in the pod's log: dismissed with its documented response (the owner is
   told) when the rest of the pod is healthy; with unhealthy pods it is **real** (the cause may not be the whole story);
   A known cause with a count ("topic does not exist" once or twice vs many): under its threshold it is dismissed;
   at or over, it is still a known cause, and the owners of what it names (e.g. the topics) are told the numbers;
2. a **trend** ("memory rising since when"), when the rule has one: a steady rise is **real** (``on_rising: real``);
   flat, one blip included, is **noise** when ``on_flat: noise``; ``count`` leaves it to step 3. A trend that
   could not be read is real;
3. "how many" (the rule's PromQL) at most ``noise_at_most``: **noise**, acknowledged and silenced;
4. anything else, and any evidence that could not be read (Prometheus down, no answer): **real**: the runbook starts
   and the page goes out. When in doubt, a person is woken; triage never hides what it could not measure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from toilless.sops.triage_alert.counts import owners_for

NOISE = "noise"
KNOWN_CAUSE = "known_cause"
REAL = "real"


@dataclass
class Verdict:
    verdict: str
    reason: str
    cause: str = ""
    response: str = ""
    owner_channel: str = ""
    evidence: list[str] = field(default_factory=list)
    #: A count-based cause at or over its threshold: who is told (``[{channel, counts}]``), keys nobody owns.
    owner_notices: list[dict[str, Any]] = field(default_factory=list)
    unknown_owners: dict[str, int] = field(default_factory=dict)
    counted: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def total(values: Sequence[float]) -> float:
    """The sum of an instant vector's values (one per series); an empty vector is 0 (no matching series: nothing
    happened). NaN / Inf are refused: they are not a count."""
    value = 0.0
    for raw in values:
        raw = float(raw)
        if not math.isfinite(raw):
            raise ValueError(f"the query returned {raw}, not a count")
        value += raw
    return value


def pods_health(pods: Sequence[Mapping[str, Any]], *, max_restarts: int) -> tuple[bool, list[str]]:
    """(healthy, problems) for a Deployment's pods as the API returns them (JSON, camelCase).

    Healthy: at least one pod, and every pod Running, Ready, not being deleted, with at most ``max_restarts``
    container restarts.
    """
    problems: list[str] = []
    if not pods:
        return False, ["no pods found"]
    for pod in pods:
        meta = pod.get("metadata") or {}
        status = pod.get("status") or {}
        name = str(meta.get("name", "?"))
        if meta.get("deletionTimestamp"):
            problems.append(f"{name}: being deleted")
            continue
        if status.get("phase") != "Running":
            problems.append(f"{name}: phase {status.get('phase')}")
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
        if ready is None or ready.get("status") != "True":
            problems.append(f"{name}: not Ready")
        restarts = sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or [])
        if restarts > max_restarts:
            problems.append(f"{name}: {restarts} restarts (more than {max_restarts})")
    return not problems, problems


def decide(
    *,
    count: float | None,
    count_error: str,
    noise_at_most: float,
    causes: Sequence[Mapping[str, Any]],
    trend: Mapping[str, Any] | None = None,
    owner_maps: Mapping[str, Mapping[str, str]] | None = None,
) -> Verdict:
    """The verdict from the evidence.

    :param count: what the rule's PromQL returned (None when it could not be read; ``count_error`` says why).
    :param causes: per known cause, in the rule's order: ``name``, ``response``, ``owner_channel``, ``matches``
        (log lines matching its pattern, or None if the log could not be read), ``min_matches``,
        ``require_pods_healthy``, ``pods_healthy`` (None: unknown), ``pod_problems``, ``log_source``; a counted
        cause also ``count`` (None: not counted, ``count_error``), ``per_key``, ``at_least``, ``window_minutes``,
        ``owner_map``, ``owner_response``.
    :param trend: :class:`~toilless.sops.triage_alert.trend.Trend` as a dict plus ``on_rising`` / ``on_flat``.
    :param owner_maps: the config's owner maps by name (e.g. ``topic_owners``), already checked.
    """
    evidence = []
    if count is None:
        evidence.append(f"how widespread: unknown ({count_error})")
    else:
        evidence.append(f"how widespread: {count:g} (noise at most {noise_at_most:g})")
    if trend is not None:
        evidence.append(f"trend: {trend.get('summary', 'unknown')}")
    for cause in causes:
        matches = cause.get("matches")
        if matches is None:
            evidence.append(f"{cause['name']}: log not read ({cause.get('log_error', 'unknown error')})")
            continue
        if cause.get("log_source"):
            evidence.append(f"{cause['name']}: {matches} matching log line(s) in {cause['log_source']}")
        if matches < int(cause.get("min_matches", 1)):
            continue
        if "at_least" in cause and cause.get("count") is None:
            return Verdict(
                REAL,
                f"known cause {cause['name']} found but could not be counted: treated as real",
                cause=str(cause["name"]),
                evidence=[*evidence, f"{cause['name']}: count unknown ({cause.get('count_error', 'unknown error')})"],
            )
        if "at_least" in cause and int(cause["count"]) == 0:
            # Its pattern is in the log, but only before the window: not a cause of this alert.
            evidence.append(f"{cause['name']}: seen 0 in {int(cause.get('window_minutes', 60))} min")
            continue
        healthy = cause.get("pods_healthy")
        problems = list(cause.get("pod_problems") or [])
        if healthy is True:
            evidence.append("pods: all healthy")
        else:
            evidence.append("pods: " + ("; ".join(problems[:5]) if problems else "health unknown"))
        if cause.get("require_pods_healthy", True) and healthy is not True:
            return Verdict(
                REAL,
                f"known cause {cause['name']} found, but the pods are not healthy: not dismissed",
                cause=str(cause["name"]),
                evidence=evidence,
            )
        if "at_least" in cause:
            return _counted(cause, evidence, owner_maps or {})
        return Verdict(
            KNOWN_CAUSE,
            # Not "<name>: <text>": a name ending in "token" would read as a secret and be masked in Slack.
            f"known cause {cause['name']}, documented response: {cause['response']}",
            cause=str(cause["name"]),
            response=str(cause["response"]),
            owner_channel=str(cause.get("owner_channel", "")),
            evidence=evidence,
        )
    if count is None:
        return Verdict(REAL, "how widespread could not be measured: treated as real", evidence=evidence)
    if trend is not None:
        state = trend.get("state")
        if state not in ("rising", "flat"):
            return Verdict(REAL, "the trend could not be read: treated as real", evidence=evidence)
        if state == "rising" and trend.get("on_rising", "real") == "real":
            return Verdict(REAL, f"steadily {trend['summary']}: real", evidence=evidence)
        if state == "flat" and trend.get("on_flat") == "noise":
            return Verdict(NOISE, f"not a steady rise ({trend['summary']}): noise, acknowledged", evidence=evidence)
    if count <= noise_at_most:
        return Verdict(
            NOISE, f"{count:g} in the window, at most {noise_at_most:g}: noise, acknowledged", evidence=evidence
        )
    return Verdict(REAL, f"{count:g} in the window, more than {noise_at_most:g}: real", evidence=evidence)


def _counted(cause: Mapping[str, Any], evidence: list[str], owner_maps: Mapping[str, Mapping[str, str]]) -> Verdict:
    """A count-based known cause: under its threshold dismissed, at or over it its owners are told the numbers."""
    count, at_least = int(cause["count"]), int(cause["at_least"])
    window = int(cause.get("window_minutes", 60))
    per_key = {str(k): int(v) for k, v in (cause.get("per_key") or {}).items()}
    shown = ", ".join(f"{key or '(not named)'}: {n}" for key, n in sorted(per_key.items(), key=lambda kv: -kv[1])[:10])
    # Without the per-key breakdown: an owner is told about their own keys only (messages.counted_owner_message).
    counted = f"{count} in {window} min"
    evidence.append(f"{cause['name']}: seen {counted}" + (f" ({shown})" if shown else "") + f", threshold {at_least}")
    if count < at_least:
        return Verdict(
            KNOWN_CAUSE,
            f"known cause {cause['name']} seen {count} time(s) in {window} min, under {at_least}: dismissed, "
            f"documented response: {cause['response']}",
            cause=str(cause["name"]),
            response=str(cause["response"]),
            evidence=evidence,
            counted=counted,
        )
    notices, unknown = owners_for(per_key, owner_maps.get(str(cause.get("owner_map", "")), {}))
    if unknown and cause.get("owner_channel"):
        # Someone must hear about what nobody is known to own: the cause's own owner, with the keys named.
        notices.append({"channel": str(cause["owner_channel"]), "counts": dict(unknown), "unowned": True})
    response = str(cause.get("owner_response") or cause["response"])
    return Verdict(
        KNOWN_CAUSE,
        f"known cause {cause['name']} seen {count} times in {window} min, at least {at_least}: the owners are told",
        cause=str(cause["name"]),
        response=response,
        evidence=evidence,
        owner_notices=notices,
        unknown_owners=unknown,
        counted=counted,
    )
