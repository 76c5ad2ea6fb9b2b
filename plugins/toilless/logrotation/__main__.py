"""Run the engine without Airflow: ``python -m toilless.logrotation --config cfg.json [--log-set NAME]
[--dry-run]``.

The config file (JSON or YAML) has the shape of include/config/log_rotation.yaml. Prints one JSON document
with what each log set did. Useful on a host by hand, and used by the crash test and the benchmark.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from toilless.logrotation import engine
from toilless.logrotation.settings import parse_log_sets, state_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m toilless.logrotation", description=__doc__)
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--log-set", action="append", default=[], help="only these log sets (repeatable)")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--no-measure", action="store_true", help="skip the mount measurement")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    text = args.config.read_text(encoding="utf-8")
    if args.config.suffix in (".yaml", ".yml"):
        import yaml

        config = yaml.safe_load(text)
    else:
        config = json.loads(text)
    log_sets = parse_log_sets(config)
    chosen = args.log_set or list(log_sets)
    state = state_dir(config)
    report = []
    for name in chosen:
        log_set = log_sets[name]
        rotated = engine.rotate_log_set(log_set, state_dir=state, dry_run=args.dry_run)
        kept = engine.apply_retention(
            log_set,
            state_dir=state,
            dry_run=args.dry_run,
            planned_archives=rotated["compressed"] if args.dry_run else None,
        )
        entry = {"rotation": rotated, "retention": kept}
        if not args.no_measure:
            entry["usage"] = engine.measure_mount_usage(log_set, state_dir=state, dry_run=args.dry_run)
        report.append(entry)
    json.dump(report, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 1 if any(entry["rotation"]["errors"] for entry in report) else 0


if __name__ == "__main__":
    sys.exit(main())
