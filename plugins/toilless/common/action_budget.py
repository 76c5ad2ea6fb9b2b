"""At most N irreversible actions per run, in total across the run's retries, and the run's place in the gate history.

For SOPs that act on many items of one target in batches (keys of a Redis, client connections): a retry of the
acting task must not start again from N. The budget lives in the run state (``toilless.common.state``) under the
target, keyed by run id, and is spent **before** each batch (a reservation) and settled after it to what was really
done. A crash between the two leaves the reservation counted: a retry may do less than N, never more.

The same entry holds the target's action history for the action gate: one entry per run that acted (its first
batch), so the cool-down and the circuit breaker count runs, not batches, and a run's own earlier batches never
hold its later ones.

Pure: plain dicts in and out (JSON-able, as the state stores them), no Airflow import.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from toilless.common import gate

#: Runs remembered per target (the oldest are dropped): a retry comes minutes after its try, never 50 runs later.
MAX_RUNS_KEPT = 50


def spent(entry: Mapping[str, Any] | None, run_id: str) -> int:
    """Actions this run has spent (reserved or done) on the target so far, over all its tries."""
    run = ((entry or {}).get("runs") or {}).get(run_id) or {}
    try:
        return max(0, int(run.get("spent", 0)))
    except (TypeError, ValueError):
        # An unreadable count: assume the worst (everything spent) rather than starting again from zero.
        return 1 << 30


def remaining(entry: Mapping[str, Any] | None, run_id: str, max_total: int) -> int:
    """How many actions this run may still take on the target."""
    return max(0, int(max_total) - spent(entry, run_id))


def gate_history(entry: Mapping[str, Any] | None, run_id: str, *, now: datetime) -> gate.TargetHistory:
    """The target's history for :func:`toilless.common.gate.check_action`, without this run's own entry."""
    entry = entry or {}
    own = ((entry.get("runs") or {}).get(run_id) or {}).get("first_at")
    actions = tuple(
        moment for moment in gate.decode_history(entry.get("history"), now=now) if int(moment.timestamp()) != own
    )
    return gate.TargetHistory(last_action_at=max(actions, default=None), recent_actions=actions)


def reserve(
    entry: Mapping[str, Any] | None, run_id: str, count: int, *, now: datetime, keep: timedelta
) -> dict[str, Any]:
    """The entry with ``count`` more actions reserved for this run (and the run in the history on its first)."""
    updated = copy.deepcopy(dict(entry or {}))
    runs = dict(updated.get("runs") or {})
    run = dict(runs.get(run_id) or {})
    run["spent"] = spent(updated, run_id) + int(count)
    if "first_at" not in run:
        run["first_at"] = int(now.timestamp())
        history = gate.decode_history(updated.get("history"), now=now)
        updated["history"] = gate.encode_history([*history, now], now=now, keep=keep)
    runs[run_id] = run
    if len(runs) > MAX_RUNS_KEPT:
        newest = sorted(runs.items(), key=lambda item: int(item[1].get("first_at", 0)))[-MAX_RUNS_KEPT:]
        runs = dict(newest)
        runs.setdefault(run_id, run)
    updated["runs"] = runs
    return updated


def settle(entry: Mapping[str, Any] | None, run_id: str, *, reserved: int, done: int) -> dict[str, Any]:
    """The entry after a batch: the part of the reservation that was not done is given back."""
    updated = copy.deepcopy(dict(entry or {}))
    runs = dict(updated.get("runs") or {})
    run = dict(runs.get(run_id) or {})
    run["spent"] = max(0, spent(updated, run_id) - max(0, int(reserved) - int(done)))
    runs[run_id] = run
    updated["runs"] = runs
    return updated
