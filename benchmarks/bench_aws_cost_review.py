"""AWS cost review (issue 5): the review maths and the chart on a large organisation's bill.

(a) Parse + review + report text for 12 linked accounts x 400 services x 4 months (4,800 account/service pairs)
    delivered as Cost Explorer pages of 500 groups each: goal under 2 s and under 200 MiB peak (tracemalloc).
(b) The trend chart of 6 flagged services (matplotlib Agg): drawing under 3 s; the matplotlib import is
    reported on its own (it depends mostly on the machine's load).
"""

from __future__ import annotations

import time
import tracemalloc
from datetime import date
from pathlib import Path
from typing import Any

ACCOUNTS = 12
SERVICES = 400
PAGE_GROUPS = 500
AS_OF = date(2026, 11, 23)


def run(work: Path) -> list[dict[str, Any]]:
    from toilless.sops.aws_cost_review import chart as cost_chart
    from toilless.sops.aws_cost_review import costs as cost_rules
    from toilless.sops.aws_cost_review import report as cost_report
    from toilless.sops.aws_cost_review import window as review_period

    window = review_period.review_window(AS_OF, 3)
    pages = _pages(window)

    def review() -> list[dict[str, Any]]:
        table = cost_rules.parse_cost_pages(pages, metric="UnblendedCost", by_account=True)
        reviews = cost_rules.review_costs(table, window, threshold_percent=15, min_dollars=120)
        flagged = [item.as_dict() for item in reviews if item.flagged]
        cost_report.render_report(
            window=window,
            services=flagged,
            anomalies=[],
            services_checked=len(reviews),
            anomalies_checked=0,
            since=date(2026, 11, 20),
            threshold_percent=15,
            min_dollars=120,
            metric="UnblendedCost",
        )
        return flagged

    # Time and memory are measured in separate passes: tracemalloc slows Python code several times over.
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        flagged = review()
        timings.append(time.perf_counter() - started)
    tracemalloc.start()
    review()
    peak_mib = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()

    started = time.perf_counter()
    import matplotlib.pyplot  # noqa: F401 - timed on its own: the first chart of a task pays for it

    import_seconds = time.perf_counter() - started
    started = time.perf_counter()
    chart = cost_chart.draw_trend_chart(flagged[:6], window, work / "chart.png", threshold_percent=15)
    chart_seconds = time.perf_counter() - started
    notes = f"{ACCOUNTS * SERVICES} account/service pairs in {len(pages)} pages; {len(flagged)} flagged"
    return [
        _row("review 4,800 pairs", "seconds (best of 3)", min(timings), 2.0, notes),
        _row("review 4,800 pairs", "peak MiB (tracemalloc)", peak_mib, 200.0, notes),
        _row("trend chart, 6 services", "seconds to draw", chart_seconds, 3.0, f"{chart.stat().st_size} bytes PNG"),
        _row("trend chart, 6 services", "seconds to import matplotlib", import_seconds, None, "once per task"),
    ]


def _row(benchmark: str, metric: str, value: float, goal: float | None, notes: str) -> dict[str, Any]:
    return {
        "benchmark": f"aws_cost_review: {benchmark}",
        "metric": metric,
        "value": f"{value:.3f}",
        "goal": "" if goal is None else f"< {goal:g}",
        "met": None if goal is None else value < goal,
        "notes": notes,
    }


def _pages(window: Any) -> list[dict[str, Any]]:
    """Groups for every month, cut into pages like Cost Explorer's; every 50th service grows 40%."""
    from toilless.sops.aws_cost_review.window import days_in

    months = [*window.baseline_months, window.review_month]
    groups_by_month: dict[date, list[dict[str, Any]]] = {month: [] for month in months}
    for account in range(ACCOUNTS):
        for service in range(SERVICES):
            rate = 10.0 + service
            for month in months:
                current = month == window.review_month
                days = window.days_elapsed if current else days_in(month)
                grown = 1.4 if current and service % 50 == 0 else 1.0
                amount = rate * grown * days
                groups_by_month[month].append(
                    {
                        "Keys": [f"{100000000000 + account}", f"Service {service:03d}"],
                        "Metrics": {"UnblendedCost": {"Amount": f"{amount:.10f}", "Unit": "USD"}},
                    }
                )
    pages = []
    for month, groups in groups_by_month.items():
        for start in range(0, len(groups), PAGE_GROUPS):
            pages.append(
                {
                    "ResultsByTime": [
                        {
                            "TimePeriod": {"Start": month.isoformat(), "End": month.isoformat()},
                            "Groups": groups[start : start + PAGE_GROUPS],
                            "Estimated": month == window.review_month,
                        }
                    ]
                }
            )
    return pages


if __name__ == "__main__":
    import tempfile

    for row in run(Path(tempfile.mkdtemp())):
        print(row)
