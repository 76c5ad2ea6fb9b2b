"""``python -m sandbox.drill [SCENARIO]``: run one drill scenario, or every one, against a sandbox.

Exit codes: 0 every drill passed, 1 a drill failed (its report says where it stopped), 2 bad input (unknown scenario,
missing runbook, malformed scenario file), checked before anything starts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

from sandbox.drill import scenarios
from sandbox.service import PROJECT_ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.drill", description=__doc__)
    parser.add_argument("scenario", nargs="?", help=f"one of: {', '.join(scenarios.available())} (default: all)")
    parser.add_argument(
        "--ready-file",
        type=Path,
        help="the facts JSON of a running sandbox (`python -m sandbox run --ready-file F`); default: start one",
    )
    parser.add_argument(
        "--budget",
        type=float,
        help="seconds from the fault to verified recovery, instead of the scenario's (a slower machine)",
    )
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / ".airflow" / "drills", help="report folder")
    args = parser.parse_args(argv)
    names = [args.scenario] if args.scenario else scenarios.available()
    try:
        chosen = [scenarios.load(name) for name in names]
        if args.budget is not None:
            if args.budget <= 0:
                raise scenarios.DrillError(f"--budget must be positive, got {args.budget}")
            chosen = [dataclasses.replace(scenario, budget_seconds=args.budget) for scenario in chosen]
    except scenarios.DrillError as err:
        print(f"drill: {err}", file=sys.stderr)
        return 2

    from sandbox.drill import runner

    process = None
    if args.ready_file:
        facts = json.loads(args.ready_file.read_text(encoding="utf-8"))
    else:
        home = Path(tempfile.mkdtemp(prefix="toilless-drill-sandbox-"))
        print(f"Starting a sandbox in {home} (a few minutes on 2 busy cores)...", flush=True)
        facts, process = runner.start_sandbox(home)
    failed = 0
    try:
        for scenario in chosen:
            try:
                outcome = runner.run(scenario, facts, args.out, log=lambda line: print(line, flush=True))
            except RuntimeError as err:
                print(f"drill {scenario.name}: FAILED before measuring: {err}", file=sys.stderr)
                failed += 1
                continue
            figures = outcome.figures
            print(
                f"drill {scenario.name}: {'PASSED' if outcome.passed else 'FAILED'}; detect {figures.detect}, "
                f"ack {figures.acknowledge}, first action {figures.first_mitigation}, MTTR {figures.recovery} (s); "
                f"people paged {figures.people_paged}; report {outcome.report_path}",
                flush=True,
            )
            for problem in outcome.problems:
                print(f"  - {problem}", flush=True)
            failed += not outcome.passed
    finally:
        if process is not None:
            runner.stop_sandbox(process)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
