"""``python -m benchmarks [NAME ...]``: run the benchmarks and write benchmarks/results.md."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
COLUMNS = ("benchmark", "metric", "value", "goal", "met", "notes")


def discover(names: list[str]) -> list[str]:
    found = sorted(path.stem for path in HERE.glob("bench_*.py"))
    if names:
        unknown = [name for name in names if f"bench_{name}" not in found and name not in found]
        if unknown:
            raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(found)}")
        found = [stem for stem in found if stem in names or stem.removeprefix("bench_") in names]
    return found


def machine() -> str:
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), {memory_gib:.0f} GiB, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def render(runs: dict[str, dict[str, Any]], seconds: float) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"- Machine: {machine()}",
        f"- Written by `make bench` (benchmarks/__main__.py; the last invocation took {seconds:.0f} s). Each "
        "benchmark's rows come from one run of it:",
        *(f"  - {stem}: {run['date']}" for stem, run in sorted(runs.items())),
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for stem in sorted(runs):
        for row in runs[stem]["rows"]:
            met = {True: "yes", False: "**no**", None: "-"}[row.get("met")]
            cells = [str(row.get(column, "")) for column in COLUMNS[:4]] + [met, str(row.get("notes", ""))]
            lines.append("| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help="run only these (e.g. parse_cost)")
    parser.add_argument("--output", type=Path, default=HERE / "results.md")
    args = parser.parse_args(argv)
    sys.path[:0] = [str(REPO / "plugins"), str(REPO)]
    started = dt.datetime.now(dt.UTC)
    clock = time.monotonic()
    rows: list[dict[str, Any]] = []
    failed = False
    for stem in discover(args.names):
        work = HERE / ".work" / stem
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        print(f"== {stem}", flush=True)
        try:
            module = importlib.import_module(f"benchmarks.{stem}")
            produced = module.run(work)
        except Exception as err:
            traceback.print_exc()
            failed = True
            produced = [{"benchmark": stem, "metric": "error", "value": f"{type(err).__name__}: {err}", "met": False}]
        finally:
            shutil.rmtree(work, ignore_errors=True)
        for row in produced:
            row["_stem"] = stem
            print(f"   {row.get('metric')}: {row.get('value')} (goal {row.get('goal') or '-'})", flush=True)
        rows.extend(produced)
    # Rows of benchmarks not run this time are kept from their last run, so re-running one keeps the whole table.
    store = args.output.with_suffix(".json")
    runs = json.loads(store.read_text(encoding="utf-8")) if store.exists() else {}
    for stem in discover(args.names):
        runs[stem] = {
            "date": f"{started:%Y-%m-%d %H:%M} UTC",
            "rows": [row for row in rows if row.get("_stem") == stem],
        }
    store.write_text(json.dumps(runs, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    args.output.write_text(render(runs, time.monotonic() - clock), encoding="utf-8")
    print(f"wrote {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
