"""The handoff's pictures: incidents per day by severity (stacked bars) and time to acknowledge / resolve by
severity (medians), one PNG. matplotlib is imported inside the function (Agg backend, no display)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SEVERITIES = ("P0", "P1", "P2", "P3")
COLOURS = {"P0": "#b2182b", "P1": "#ef8a62", "P2": "#fddbc7", "P3": "#d1e5f0"}


def per_day(incidents: Sequence[Mapping[str, Any]], week_start: datetime) -> dict[str, list[int]]:
    """Incidents opened on each of the 7 days, by severity (opened before the week: not counted). Pure."""
    counts = {code: [0] * 7 for code in SEVERITIES}
    start = week_start.timestamp()
    for incident in incidents:
        day = int((incident["opened_at"] - start) // 86400)
        if 0 <= day < 7 and incident.get("severity") in counts:
            counts[incident["severity"]][day] += 1
    return counts


def medians(incidents: Sequence[Mapping[str, Any]], field: str) -> dict[str, float | None]:
    """Median minutes from opened to ``field`` per severity (None without data). Pure."""
    found: dict[str, float | None] = {}
    for code in SEVERITIES:
        values = sorted(
            (item[field] - item["opened_at"]) / 60
            for item in incidents
            if item.get("severity") == code and item.get(field) is not None
        )
        if not values:
            found[code] = None
            continue
        middle = len(values) // 2
        found[code] = values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
    return found


def render_chart(incidents: Sequence[Mapping[str, Any]], week_start: datetime, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = per_day(incidents, week_start)
    days = [(week_start + timedelta(days=offset)).astimezone(UTC).strftime("%a %d") for offset in range(7)]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    bottom = [0] * 7
    for code in SEVERITIES:
        left.bar(days, counts[code], bottom=bottom, label=code, color=COLOURS[code], edgecolor="#555555")
        bottom = [a + b for a, b in zip(bottom, counts[code], strict=True)]
    left.set_title("Incidents opened per day")
    left.legend(loc="upper right")
    ack, resolve = medians(incidents, "acknowledged_at"), medians(incidents, "resolved_at")
    positions = range(len(SEVERITIES))
    right.bar([p - 0.2 for p in positions], [ack[c] or 0 for c in SEVERITIES], width=0.4, label="to acknowledge")
    right.bar([p + 0.2 for p in positions], [resolve[c] or 0 for c in SEVERITIES], width=0.4, label="to resolve")
    right.set_xticks(list(positions), SEVERITIES)
    right.set_ylabel("median minutes")
    right.set_title("Time to acknowledge and to resolve")
    right.legend(loc="upper right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
