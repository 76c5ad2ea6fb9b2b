"""The cost review's picture: each flagged service's monthly spend against its baseline, as a PNG.

matplotlib is imported inside the function (Agg backend, no display): this module is cheap to import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from toilless.sops.aws_cost_review.formatting import money, percent_text
from toilless.sops.aws_cost_review.window import ReviewWindow, days_in


def draw_trend_chart(
    services: Sequence[Mapping[str, Any]],
    window: ReviewWindow,
    path: Path,
    *,
    threshold_percent: float,
    title: str = "AWS cost review",
) -> Path:
    """One panel per flagged service: monthly spend bars, the baseline line, the threshold line.

    Months are drawn as month-equivalents of their daily rate (spend / days x days of the review month), so
    a short February sits on the same scale as the baseline; the month in progress shows its month-to-date
    spend (solid) and its run-rate projection (hatched).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not services:
        raise ValueError("nothing to draw: no flagged services")
    count = len(services)
    columns = 1 if count == 1 else 2
    rows = (count + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(6.4 * columns, 3.4 * rows), squeeze=False)
    months = [*window.baseline_months, window.review_month]
    labels = [f"{month:%b %Y}" for month in months]
    labels[-1] += f"\n({window.days_elapsed}/{window.days_in_month} d)"
    for index, service in enumerate(services):
        axis = axes[index // columns][index % columns]
        history = service["history"]
        per_month = [_month_equivalent(history.get(month.isoformat()), month, window) for month in months[:-1]]
        baseline = service["baseline_month"]
        positions = range(len(months))
        axis.bar(
            list(positions)[:-1],
            [value or 0.0 for value in per_month],
            color="#9aa5b1",
            label="month (daily rate x days)",
        )
        axis.bar(
            len(months) - 1,
            service["projected_month"],
            color="none",
            edgecolor="#d9480f",
            hatch="//",
            label="run rate",
        )
        axis.bar(len(months) - 1, service["current"], color="#d9480f", label="month to date")
        if baseline > 0:
            axis.axhline(baseline, color="#1c7ed6", linestyle="--", linewidth=1.5, label="baseline (avg)")
            axis.axhline(
                baseline * (1 + threshold_percent / 100.0),
                color="#e03131",
                linestyle=":",
                linewidth=1.2,
                label=f"+{threshold_percent:g}%",
            )
        axis.set_xticks(list(positions), labels, fontsize=8)
        axis.set_title(
            f"{service['label']}: {_change(service)}, {money(service['change_dollars'])} over",
            fontsize=9,
        )
        axis.yaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("${x:,.0f}"))
        axis.tick_params(axis="y", labelsize=8)
        axis.grid(axis="y", alpha=0.3)
    for index in range(count, rows * columns):
        axes[index // columns][index % columns].axis("off")
    figure.suptitle(f"{title}: {window.review_month:%B %Y}, flagged services vs baseline", fontsize=11)
    legend_rows = 1 if columns == 2 else 2
    figure.legend(
        handles=_legend(threshold_percent), loc="lower center", ncol=5 if columns == 2 else 3, fontsize=8, frameon=False
    )
    # Keep room at the bottom for the legend (about a quarter inch per legend row).
    figure.tight_layout(rect=(0, 0.28 * legend_rows / figure.get_figheight(), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=110)
    plt.close(figure)
    return path


def _month_equivalent(amount: float | None, month: date, window: ReviewWindow) -> float | None:
    if amount is None:
        return None
    return amount / days_in(month) * window.days_in_month


def _change(service: Mapping[str, Any]) -> str:
    if service["change_percent"] is None:
        return service["reason"]
    return percent_text(service["change_percent"])


def _legend(threshold_percent: float) -> list[Any]:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    return [
        Patch(color="#9aa5b1", label="month (daily rate x days of this month)"),
        Patch(color="#d9480f", label="month to date"),
        Patch(facecolor="none", edgecolor="#d9480f", hatch="//", label="run rate to month end"),
        Line2D([], [], color="#1c7ed6", linestyle="--", label="baseline (average)"),
        Line2D([], [], color="#e03131", linestyle=":", label=f"baseline +{threshold_percent:g}%"),
    ]
