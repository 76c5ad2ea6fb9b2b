"""The PNG timeline chart of one drill: each timeline event on its kind's row, the four measures as lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandbox.drill.report import Figures


def write_chart(path: Path, *, scenario: str, fault_at: float, events: list[dict[str, Any]], found: Figures) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no display on a CI machine
    import matplotlib.pyplot as plt

    kinds = sorted({str(event["kind"]) for event in events})
    figure, axes = plt.subplots(figsize=(10, 1.2 + 0.4 * max(len(kinds), 1)))
    for row, kind in enumerate(kinds):
        offsets = [float(event["at"]) - fault_at for event in events if event["kind"] == kind]
        axes.scatter(offsets, [row] * len(offsets), marker="o", s=30)
    axes.set_yticks(range(len(kinds)), kinds)
    marks = [
        ("detect", found.detect, "tab:orange"),
        ("ack", found.acknowledge, "tab:blue"),
        ("first action", found.first_mitigation, "tab:purple"),
        ("recovered", found.recovery, "tab:green"),
    ]
    for label, value, colour in marks:
        if value is not None:
            axes.axvline(value, color=colour, linestyle="--", linewidth=1, label=f"{label} {value:.0f}s")
    axes.axvline(0, color="tab:red", linewidth=1.5, label="fault")
    axes.set_xlabel("seconds from the fault")
    axes.set_title(f"drill {scenario}")
    axes.legend(loc="lower right", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
