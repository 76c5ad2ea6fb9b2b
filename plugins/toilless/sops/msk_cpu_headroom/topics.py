"""Which topics drive a CPU spike, and who to ask: pure, over per-topic BytesInPerSec of the two windows.

A topic's **rise** is its last-hour mean minus the median of its hourly means before the last hour (0 without
history). The **drivers** are the topics with the largest rises that together make ``driver_share`` (80%) of the
total rise, at most ``max_topics``. If topics starting with the configured prefix (``connect-component``) make at
least ``connect_share`` (50%) of the total rise, the spike is usually another team's performance test: route
``connect_component`` (their channel is asked to reduce the load). Otherwise route ``ask_owners``: each non-prefixed
driver with its owner from the topic-owner map (exact name or shell-style pattern), unknown owners listed.
Without per-topic metrics (enhanced monitoring below PER_TOPIC_PER_BROKER) the route is ``no_topic_metrics``.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

CONNECT_COMPONENT = "connect_component"
ASK_OWNERS = "ask_owners"
NO_TOPIC_METRICS = "no_topic_metrics"
NO_RISE = "no_rise"
HOUR = 3_600.0


@dataclass(frozen=True)
class TopicRules:
    prefix: str = "connect-component"
    connect_share: float = 0.5
    driver_share: float = 0.8
    max_topics: int = 10


def topic_rises(
    hour: Mapping[str, Sequence[tuple[float, float]]],
    week: Mapping[str, Sequence[tuple[float, float]]],
    *,
    now: float,
) -> list[dict[str, Any]]:
    """Per topic: last-hour mean, median of the hourly means before the last hour, and the rise (bytes/s), largest
    rise first. ``hour`` and ``week`` are ``{topic: [(epoch, bytes/s)]}`` of the two windows."""
    rows = []
    for topic in sorted(set(hour) | set(week)):
        recent = [value for stamp, value in hour.get(topic, []) if stamp >= now - HOUR]
        history = [value for stamp, value in week.get(topic, []) if stamp < now - HOUR]
        hour_mean = statistics.fmean(recent) if recent else 0.0
        baseline = statistics.median(history) if history else 0.0
        rows.append(
            {
                "topic": topic,
                "hour_bytes_per_s": round(hour_mean, 1),
                "baseline_bytes_per_s": round(baseline, 1),
                "rise_bytes_per_s": round(hour_mean - baseline, 1),
            }
        )
    return sorted(rows, key=lambda row: (-row["rise_bytes_per_s"], row["topic"]))


def owner_of(topic: str, owners: Mapping[str, str]) -> str | None:
    """The owner from the map: an exact name first, then the longest matching pattern."""
    if topic in owners:
        return owners[topic]
    matching = [pattern for pattern in owners if fnmatchcase(topic, pattern)]
    return owners[max(matching, key=len)] if matching else None


def attribute_spike(
    rises: Sequence[Mapping[str, Any]], *, owners: Mapping[str, str], rules: TopicRules
) -> dict[str, Any]:
    """Route a spike: to the connect-component team, to the topics' owners, or say why the topics are not known."""
    if not rises:
        return {"route": NO_TOPIC_METRICS, "drivers": [], "connect_share": None, "owners": {}, "unknown_owner": []}
    rising = [row for row in rises if row["rise_bytes_per_s"] > 0]
    total = sum(row["rise_bytes_per_s"] for row in rising)
    if total <= 0:
        return {"route": NO_RISE, "drivers": [], "connect_share": 0.0, "owners": {}, "unknown_owner": []}
    drivers: list[Mapping[str, Any]] = []
    covered = 0.0
    for row in rising:
        if covered >= rules.driver_share * total or len(drivers) >= rules.max_topics:
            break
        drivers.append(row)
        covered += row["rise_bytes_per_s"]
    connect_rise = sum(row["rise_bytes_per_s"] for row in rising if row["topic"].startswith(rules.prefix))
    share = connect_rise / total
    if share >= rules.connect_share:
        connect = [dict(row) for row in rising if row["topic"].startswith(rules.prefix)][: rules.max_topics]
        return {
            "route": CONNECT_COMPONENT,
            "drivers": connect,
            "connect_share": round(share, 3),
            "owners": {},
            "unknown_owner": [],
        }
    others = [dict(row) for row in drivers if not row["topic"].startswith(rules.prefix)]
    known = {row["topic"]: owner for row in others if (owner := owner_of(row["topic"], owners))}
    return {
        "route": ASK_OWNERS,
        "drivers": others,
        "connect_share": round(share, 3),
        "owners": known,
        "unknown_owner": [row["topic"] for row in others if row["topic"] not in known],
    }
