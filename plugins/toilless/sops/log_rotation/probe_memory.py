"""Which compression settings the adaptive probe chose for each log, kept in the host's state directory.

A log is rotated daily and its style does not change from one day to the next, so probing every rotated file
(gzip -6 and up to four candidates on a 1 MiB sample: ~25 ms of CPU, most of it before compression can start)
repeats yesterday's answer. The choice is remembered per live file and reused until one of these says the log
may have changed, and then the next rotation probes again:

* it is older than :data:`REPROBE_AFTER` (a week: at most one probe per log per week);
* the configured settings or the probe's candidates changed (:func:`compress.probe_key`);
* a file compressed with it came out more than :data:`RATIO_DRIFT` larger or smaller, relative to its source,
  than the file the probe chose it for (different content compresses differently: let the probe look again).

The file is advisory: a missing, torn or foreign one is read as empty (the engine then probes), and it is
replaced atomically (``os.replace``) under the log set's lock, never fsynced: losing it costs one probe.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from toilless.sops.log_rotation.compress import CompressionChoice

REPROBE_AFTER = timedelta(days=7)
#: Relative change of archive/source ratio, against the probed file's, that makes the next rotation probe again.
RATIO_DRIFT = 0.02
#: Entries kept per log set (a log set matching thousands of files must not grow the file without bound).
MAX_ENTRIES = 1000


def memory_file(state_dir: Path, log_set_name: str) -> Path:
    return state_dir / f"{log_set_name}.compression.json"


def load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save(path: Path, memory: dict[str, Any]) -> None:
    if len(memory) > MAX_ENTRIES:
        newest = sorted(memory.items(), key=lambda item: str(item[1].get("probed_at", "")), reverse=True)
        memory = dict(newest[:MAX_ENTRIES])
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(memory, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # advisory: the next rotation probes again


def recall(memory: dict[str, Any], live: str, key: str, now: datetime) -> CompressionChoice | None:
    """The choice remembered for ``live`` under the current settings ``key``, if still to be trusted."""
    entry = memory.get(live)
    if not isinstance(entry, dict) or entry.get("key") != key:
        return None
    try:
        probed_at = datetime.fromisoformat(entry["probed_at"])
        if not timedelta(0) <= now - probed_at < REPROBE_AFTER:
            return None
        choice = entry["choice"]
        return CompressionChoice(
            str(choice["compression"]),
            int(choice["level"]),
            dict(choice["parameters"]),
            f"{choice['note']}, as probed {probed_at:%Y-%m-%d}",
        )
    except (KeyError, TypeError, ValueError):
        return None


def remember(
    memory: dict[str, Any], live: str, key: str, choice: CompressionChoice, ratio: float, now: datetime
) -> None:
    """A probe chose ``choice`` for ``live`` and the whole file compressed to ``ratio`` of its size."""
    memory[live] = {
        "key": key,
        "probed_at": now.isoformat(),
        "ratio": ratio,
        "choice": {
            "compression": choice.compression,
            "level": choice.level,
            "parameters": choice.parameters,
            "note": choice.note,
        },
    }


def check_drift(memory: dict[str, Any], live: str, ratio: float) -> bool:
    """After a file was compressed with a remembered choice: forget the choice (so the next rotation probes) if
    this file's ratio moved by more than :data:`RATIO_DRIFT` from the probed file's. True if it was forgotten."""
    entry = memory.get(live)
    try:
        probed_ratio = float(entry["ratio"])  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        memory.pop(live, None)
        return True
    if probed_ratio <= 0 or abs(ratio / probed_ratio - 1) > RATIO_DRIFT:
        memory.pop(live, None)
        return True
    return False
