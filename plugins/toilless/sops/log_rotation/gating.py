"""log_rotation's place at the shared action gate (:mod:`toilless.common.gate`).

Rotating and deleting archives change files, so each passes the gate at the moment it acts, under the log set's
lock on the host that owns the files: dry run, once per incident, circuit breaker, cool-down and the maintenance
window, as every other SOP. What the gate needs to know about past actions is kept next to the lock, in the host's
state directory (``<log set>.gate.json``): the files are on that host, and so is the only record that matters for
them.

An allowed verdict is written to the history **before** the files change (a reservation): a crash after it leaves
the action counted, so a second run for the same incident never acts again, while a retry of the same run (the same
run id) is not held by its own entry and finishes what was cut off. Rotation and retention are idempotent on the
files themselves (they re-read the directory under the lock), so finishing is safe.

Pure: no Airflow import.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from toilless.common import gate

log = logging.getLogger(__name__)

ROTATE = "rotate and compress logs"
RETAIN = "delete archives beyond retention"

#: How long an action is remembered: longer than any circuit-breaker window or cool-down a config may set.
KEEP = timedelta(days=8)
#: At most this many entries per log set (a runaway schedule cannot grow the file without bound).
MAX_ENTRIES = 500


@dataclass(frozen=True)
class GateRequest:
    """Who asks: the policy read at the moment of acting, the run (a retry shares its id), the incident if any."""

    policy: gate.GatePolicy
    run_id: str
    incident: str | None = None


def history_file(state_dir: Path, log_set: str) -> Path:
    return state_dir / f"{log_set}.gate.json"


def read_entries(state_dir: Path, log_set: str, *, now: datetime) -> list[dict[str, Any]]:
    """The remembered actions on ``log_set`` (unreadable or future-dated entries dropped, with a warning)."""
    path = history_file(state_dir, log_set)
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        # Someone broke the file: the gate cannot see past actions. Refusing every rotation until a person fixes it
        # would fill the disk; acting as if nothing happened could act twice. The breaker and cool-down start again
        # from what this run writes; the warning says why.
        log.warning("Action history %s is unreadable (%s): starting it again", path, err)
        return []
    entries = loaded.get("actions") if isinstance(loaded, Mapping) else None
    kept = []
    for entry in entries if isinstance(entries, list) else []:
        moment = _moment(entry.get("at") if isinstance(entry, Mapping) else None)
        if moment is None or moment <= now - KEEP or gate.in_the_future(moment, now=now, what="log rotation action"):
            continue
        kept.append(dict(entry))
    return kept


def target_history(entries: list[dict[str, Any]], action: str, request: GateRequest) -> gate.TargetHistory:
    """The gate's view of ``action`` on the log set: other runs' actions (a retry of this run is not held by its own
    earlier try), and whether another run already acted for this incident."""
    others = [entry for entry in entries if entry.get("action") == action and entry.get("run_id") != request.run_id]
    moments = tuple(moment for entry in others if (moment := _moment(entry.get("at"))) is not None)
    same_incident = [entry for entry in others if request.incident and entry.get("incident") == request.incident]
    return gate.TargetHistory(
        last_action_at=max(moments, default=None),
        recent_actions=moments,
        incident_done=bool(same_incident),
        incident_note=f"run {same_incident[-1].get('run_id')}" if same_incident else "",
    )


def decide(state_dir: Path, log_set: str, action: str, request: GateRequest, *, now: datetime) -> gate.GateVerdict:
    """The gate's verdict on ``action`` for ``log_set`` now; an allowed one is remembered before anything changes.

    Call it under the log set's lock (:func:`toilless.sops.log_rotation.engine.log_set_lock`): two runs must not
    both read "no action yet" and both act.
    """
    entries = read_entries(state_dir, log_set, now=now)
    verdict = gate.check_action(
        action, f"log set {log_set}", now=now, policy=request.policy, history=target_history(entries, action, request)
    )
    if verdict.allowed and not any(e.get("action") == action and e.get("run_id") == request.run_id for e in entries):
        entries.append({"action": action, "run_id": request.run_id, "incident": request.incident, "at": _iso(now)})
        _write(history_file(state_dir, log_set), entries[-MAX_ENTRIES:])
    return verdict


def _write(path: Path, entries: list[dict[str, Any]]) -> None:
    """Atomically (write, fsync, rename): a crash leaves the old history or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump({"actions": entries}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()
