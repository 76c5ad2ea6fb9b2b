"""Run the engine without Airflow: ``python -m toilless.sops.log_rotation --config cfg.json [--log-set NAME]
[--dry-run]``.

The config file (JSON or YAML) has the shape of include/config/log_rotation.yaml. Prints one JSON document
with what each log set did. Useful on a host by hand, and used by the crash test and the benchmark.

Exit codes: 0 everything finished; 1 a log set had errors (each in its ``errors`` list, and one line per refused
or failed path on stderr); 2 the config or the arguments are unusable (one line on stderr, nothing touched). No
Python traceback is printed for any of these.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from toilless.sops.log_rotation import engine
from toilless.sops.log_rotation.settings import parse_log_sets, state_dir


class _UsageError(Exception):
    """The config or the arguments cannot be used; nothing was touched."""


def _load(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix in (".yaml", ".yml"):
            import yaml

            config = yaml.safe_load(text)
        else:
            config = json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as err:  # yaml.YAMLError and JSONDecodeError are ValueErrors
        raise _UsageError(f"cannot read config {path}: {err}") from err
    except Exception as err:  # yaml.YAMLError is not a ValueError
        raise _UsageError(f"cannot parse config {path}: {err}") from err
    if not isinstance(config, dict):
        raise _UsageError(f"config {path} must hold a mapping, not {type(config).__name__}")
    return config


def _run_log_set(log_set: Any, state: Path, *, dry_run: bool, measure: bool) -> dict[str, Any]:
    """One log set; any failure becomes an error in its entry, and the other log sets still run."""
    entry: dict[str, Any] = {"log_set": log_set.name}
    try:
        rotated = engine.rotate_log_set(log_set, state_dir=state, dry_run=dry_run)
        entry["rotation"] = rotated
        entry["retention"] = engine.apply_retention(
            log_set,
            state_dir=state,
            dry_run=dry_run,
            planned_archives=rotated["compressed"] if dry_run else None,
        )
        if measure:
            entry["usage"] = engine.measure_mount_usage(log_set, state_dir=state, dry_run=dry_run)
    except Exception as err:  # reported in the JSON and on stderr, never as a traceback
        logging.getLogger(__name__).debug("log set %s failed", log_set.name, exc_info=True)
        entry.setdefault("rotation", {"log_set": log_set.name, "errors": []})
        entry["rotation"].setdefault("errors", []).append(f"{type(err).__name__}: {err}")
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m toilless.sops.log_rotation", description=__doc__)
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--log-set", action="append", default=[], help="only these log sets (repeatable)")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--no-measure", action="store_true", help="skip the mount measurement")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL, format="%(levelname)s %(message)s")
    try:
        config = _load(args.config)
        log_sets = parse_log_sets(config)
        unknown = [name for name in args.log_set if name not in log_sets]
        if unknown:
            raise _UsageError(f"unknown log set(s) {', '.join(unknown)}; configured: {', '.join(log_sets)}")
        state = state_dir(config)
    except (_UsageError, ValueError) as err:  # LogRotationConfigError and PathEscapeError are ValueErrors
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # a config of the wrong shape (a list where a mapping belongs): still one line
        print(f"error: invalid config {args.config}: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    report = [
        _run_log_set(log_sets[name], state, dry_run=args.dry_run, measure=not args.no_measure)
        for name in (args.log_set or list(log_sets))
    ]
    json.dump(report, sys.stdout, indent=1)
    sys.stdout.write("\n")
    for entry in report:
        rotation = entry["rotation"]
        for item in rotation.get("skipped", []):
            print(f"skipped {item['path']!r}: {item['reason']}", file=sys.stderr)
        for error in [*rotation.get("errors", []), *(entry.get("retention") or {}).get("errors", [])]:
            print(f"error in log set {entry['log_set']}: {error}", file=sys.stderr)
    failed = any(entry["rotation"].get("errors") or (entry.get("retention") or {}).get("errors") for entry in report)
    return 1 if failed else 0


def _exit_now(code: int) -> None:
    """Leave without the interpreter's teardown: tearing down the modules a run imported (collecting and freeing
    every object) cost 10-40 ms of a 0.5 s rotation, after all its work was done. Nothing is lost: every file the
    engine wrote is closed and fsynced where it matters, its threads have ended, and the output is flushed here."""
    logging.shutdown()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # the reader went away (a closed pipe): exit as the interpreter would, with 120
        code = code or 120
    os._exit(code)


if __name__ == "__main__":
    _exit_now(main())
