"""``python -m benchmarks [NAME ...]``: run the benchmarks and write benchmarks/results.md."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
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


def render(rows: list[dict[str, Any]], started: dt.datetime, seconds: float) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"- Date: {started:%Y-%m-%d %H:%M} UTC (took {seconds:.0f} s)",
        f"- Machine: {machine()}",
        "- Written by `make bench` (benchmarks/__main__.py); every row is measured in that run.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for row in rows:
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
            print(f"   {row.get('metric')}: {row.get('value')} (goal {row.get('goal') or '-'})", flush=True)
        rows.extend(produced)
    args.output.write_text(render(rows, started, time.monotonic() - clock), encoding="utf-8")
    print(f"wrote {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
