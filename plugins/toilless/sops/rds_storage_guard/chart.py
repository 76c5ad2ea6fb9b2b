"""PNG chart of an RDS instance's used storage, its forecast and its allocation. matplotlib is imported on use."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from toilless.sops.rds_storage_guard.forecasting import GIB, SECONDS_PER_DAY


def render_storage_chart(
    decision: Mapping[str, Any],
    free_storage: Sequence[Sequence[float]],
    path: Path,
    *,
    forecast_days: float,
    warning_pct: float,
    critical_pct: float,
) -> Path:
    """Used GiB over time, the fitted trend extended ``forecast_days`` ahead, the allocation and the thresholds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    allocated = float(decision["allocated_gib"])
    forecast = decision.get("forecast") or {}
    ordered = sorted((float(t), float(free)) for t, free in free_storage)
    times = [datetime.fromtimestamp(t, UTC) for t, _ in ordered]
    used = [allocated - free / GIB for _, free in ordered]

    figure, axes = plt.subplots(figsize=(8, 4), dpi=100)
    try:
        axes.plot(times, used, label="used (GiB)", color="tab:blue")
        growth = forecast.get("growth_bytes_per_day")
        if ordered and growth is not None:
            start_t = ordered[-1][0]
            start_used = forecast["used_bytes"] / GIB
            horizon = [start_t + day * SECONDS_PER_DAY for day in range(int(forecast_days) + 1)]
            projected = [start_used + growth / GIB * (t - start_t) / SECONDS_PER_DAY for t in horizon]
            axes.plot(
                [datetime.fromtimestamp(t, UTC) for t in horizon],
                projected,
                linestyle="--",
                color="tab:orange",
                label=f"forecast ({growth / GIB:.2f} GiB/day)",
            )
            end = datetime.fromtimestamp(horizon[-1], UTC)
        else:
            end = (times[-1] if times else datetime.now(UTC)) + timedelta(days=forecast_days)
        begin = times[0] if times else end - timedelta(days=forecast_days)
        axes.hlines(allocated, begin, end, colors="black", label=f"allocated {allocated:.0f} GiB")
        axes.hlines(
            allocated * warning_pct / 100,
            begin,
            end,
            colors="gold",
            linestyles=":",
            label=f"warning {warning_pct:g}%",
        )
        axes.hlines(
            allocated * critical_pct / 100,
            begin,
            end,
            colors="red",
            linestyles=":",
            label=f"critical {critical_pct:g}%",
        )
        if decision.get("target_gib"):
            axes.hlines(
                float(decision["target_gib"]),
                begin,
                end,
                colors="green",
                label=f"proposed {decision['target_gib']} GiB",
            )
        axes.set_title(f"{decision['instance_id']}: {decision['state']} ({forecast.get('used_pct', 0):.1f}% used)")
        axes.set_ylabel("GiB")
        axes.set_ylim(bottom=0)
        axes.legend(loc="lower left", fontsize="small")
        figure.autofmt_xdate()
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="png")
    finally:
        plt.close(figure)
    return path


def chart_dir(configured: str, run_id: str) -> Path:
    """Where a run's charts go: ``report.chart_dir`` (relative to AIRFLOW_HOME unless absolute), one folder per run."""
    base = Path(configured)
    if not base.is_absolute():
        base = Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / base
    return base / run_id.replace(":", "_").replace("/", "_")
