"""Incident drills (issue 21): one summary row per scenario (detect, acknowledge, first action, MTTR, people paged,
done twice / outside policy, passed), from ``python -m sandbox.drill``'s runner on a sandbox of its own.

Starts ``python -m sandbox run --free-ports`` (what ``make drill`` does; minutes on 2 cores), runs every scenario in
``sandbox/drill/scenarios/`` with its own budget, and stops the sandbox. ``TOILLESS_DRILL_READY_FILE`` attaches to a
running sandbox instead; ``TOILLESS_DRILL_BUDGET`` (seconds) replaces every scenario's budget on a slower machine
(the goal column then says so). ``TOILLESS_DRILL_SCENARIOS=a,b`` runs only those; the other scenarios' rows are
kept from results.json with the date they were measured (a fix to one runbook re-measures its drill alone). Reports
and timeline charts are written under the bench's work folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any


def run(work: Path) -> list[dict[str, Any]]:
    from sandbox.drill import report, runner, scenarios

    only = [name.strip() for name in os.environ.get("TOILLESS_DRILL_SCENARIOS", "").split(",") if name.strip()]
    chosen = [scenarios.load(name) for name in (only or scenarios.available())]
    budget = os.environ.get("TOILLESS_DRILL_BUDGET")
    if budget:
        chosen = [dataclasses.replace(scenario, budget_seconds=float(budget)) for scenario in chosen]
    ready_file = os.environ.get("TOILLESS_DRILL_READY_FILE")
    process = None
    if ready_file:
        facts = json.loads(Path(ready_file).read_text(encoding="utf-8"))
    else:
        facts, process = runner.start_sandbox(work / "sandbox")
    rows: list[dict[str, Any]] = []
    try:
        for scenario in chosen:
            try:
                outcome = runner.run(scenario, facts, work / "reports")
            except RuntimeError as err:
                found = report.Figures()
                rows.append(
                    report.summary_row(
                        scenario.name,
                        found,
                        problems=[f"did not start: {err}"],
                        budget=scenario.budget_seconds,
                        outage=scenario.outage,
                    )
                )
                continue
            rows.append(
                report.summary_row(
                    scenario.name,
                    outcome.figures,
                    problems=outcome.problems,
                    budget=scenario.budget_seconds,
                    outage=scenario.outage,
                )
            )
    finally:
        if process is not None:
            runner.stop_sandbox(process)
    load = runner.load_average()
    for row in rows:
        row["notes"] = "; ".join(part for part in (row["notes"], f"load {load}") if part)
    return rows + (_kept_rows({scenario.name for scenario in chosen}) if only else [])


def _kept_rows(measured: set[str]) -> list[dict[str, Any]]:
    """The last recorded rows of the scenarios not run this time, each saying when it was measured."""
    store = Path(__file__).with_name("results.json")
    last = json.loads(store.read_text(encoding="utf-8")).get("bench_drill", {}) if store.exists() else {}
    kept = []
    for row in last.get("rows", []):
        if row.get("metric") in measured or row.get("metric") == "error":
            continue
        note = f"measured {last.get('date', '?')}"
        notes = str(row.get("notes") or "")
        kept.append({**row, "notes": notes if note in notes else "; ".join(p for p in (notes, note) if p)})
    return kept
