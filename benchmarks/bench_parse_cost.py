"""DAG parse cost per file, each in a fresh process, as a ratio to a trivial DAG file parsed the same way.

Parsing is what the dag-processor repeats for every file every refresh interval, so a DAG file that imports heavy
modules or does I/O at parse time costs all day. The probe (scripts/parse_probe.py) imports Airflow first, then times
only the DAG file's own import; the median of several fresh processes per file is compared.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PROBE = REPO / "scripts" / "parse_probe.py"
TRIVIAL = REPO / "tests" / "dags" / "fixture_bad" / "trivial.py"
REPEATS = 5
#: A SOP DAG may cost more than an empty one (it imports the shared library), but not an order of magnitude more.
GOAL_RATIO = 10.0


def _probe(path: Path) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, str(PROBE), str(path)], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def _median_seconds(path: Path) -> tuple[float, dict[str, Any]]:
    reports = [_probe(path) for _ in range(REPEATS)]
    return statistics.median(report["seconds"] for report in reports), reports[-1]


def run(work: Path) -> list[dict[str, Any]]:
    baseline, _ = _median_seconds(TRIVIAL)
    rows = [
        {
            "benchmark": "parse_cost",
            "metric": "trivial DAG file (baseline)",
            "value": f"{baseline * 1000:.0f} ms",
            "goal": "",
            "met": None,
            "notes": f"median of {REPEATS} fresh processes, Airflow import excluded",
        }
    ]
    for path in sorted((REPO / "dags").glob("*.py")):
        seconds, report = _median_seconds(path)
        ratio = seconds / baseline
        clean = not report["error"] and not report["heavy_modules"]
        rows.append(
            {
                "benchmark": "parse_cost",
                "metric": f"dags/{path.name}",
                "value": f"{ratio:.1f}x ({seconds * 1000:.0f} ms, max RSS {report['max_rss_kb'] / 1024:.0f} MB)",
                "goal": f"<= {GOAL_RATIO:.0f}x trivial, no I/O or heavy imports",
                "met": ratio <= GOAL_RATIO and clean,
                "notes": report["error"] or (", ".join(report["heavy_modules"]) or "no heavy imports"),
            }
        )
    return rows
