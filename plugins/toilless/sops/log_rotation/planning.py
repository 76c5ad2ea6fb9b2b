"""Which log sets a run rotates, with which extra paths, on which host queue. Pure: config and Params in, plan out.

Runs before anything touches a file, so every bad input (an unknown log set, a path outside the roots, a queue the
DAG has no task for) fails here with a clear message and nothing changed.
"""

from __future__ import annotations

import os
from typing import Any

from toilless.sops.log_rotation import paths
from toilless.sops.log_rotation.settings import LogRotationConfigError, LogSet, allowed_roots, parse_log_sets

DEFAULT_QUEUE_KEY = "default_queue"


def queue_key(queue: str | None) -> str:
    """The plan key (an XCom key) of a host queue's work; ``None`` is the default queue."""
    return DEFAULT_QUEUE_KEY if queue is None else f"queue_{queue}"


def select_log_sets(
    log_sets: dict[str, LogSet], names: list[str] | None, alert: dict[str, Any] | None
) -> tuple[list[LogSet], str]:
    """The log sets to run and why: the Params' names, else those the alert points at, else (no alert) all of them.

    An alert whose labels point at no configured log set (``mountpoint="/../../etc"``) selects none: "no matching
    target", and the run acts on nothing. Rotating everything because nothing matched would act far beyond the alert.
    """
    if names:
        unknown = sorted(set(names) - set(log_sets))
        if unknown:
            raise LogRotationConfigError(
                f"unknown log set(s) {', '.join(unknown)}; configured: {', '.join(sorted(log_sets))}"
            )
        return [log_sets[name] for name in dict.fromkeys(names)], "chosen in the run's Params"
    if alert:
        labels = alert.get("labels") or {}
        if labels.get("log_set") in log_sets:
            return [log_sets[labels["log_set"]]], f"alert {alert.get('alertname')} names log set {labels['log_set']}"
        mountpoint = labels.get("mountpoint")
        # A real mount point is an absolute path without "." or ".." segments: normalising "/.." would turn a
        # traversal into "/", which holds every log set.
        if isinstance(mountpoint, str) and mountpoint.startswith("/") and not _dot_segments(mountpoint):
            on_mount = [item for item in log_sets.values() if paths.is_under(item.root, os.path.normpath(mountpoint))]
            if on_mount:
                return on_mount, f"alert {alert.get('alertname')} is about mount {mountpoint}"
        return [], f"alert {alert.get('alertname')}: no matching target (no log set matched its labels), nothing done"
    return list(log_sets.values()), "all configured log sets"


def _dot_segments(path: str) -> bool:
    return any(part in (".", "..") for part in path.split("/"))


def assign_extra_paths(chosen: list[LogSet], extra: list[str] | None, roots: list[str]) -> dict[str, list[str]]:
    """Each extra path (a Param) goes to the chosen log set with the deepest root containing it.

    Raises :class:`paths.PathEscapeError` for a path outside the allowed roots or outside every chosen log set.
    """
    assigned: dict[str, list[str]] = {item.name: [] for item in chosen}
    for pattern in extra or []:
        paths.owning_root(pattern, roots)  # outside every allowed root: the clearest error first
        owners = [item for item in chosen if _covers(item.root, pattern)]
        if not owners:
            raise paths.PathEscapeError(
                f"path {pattern!r} is under an allowed root but under no chosen log set's root "
                f"({', '.join(f'{item.name}: {item.root}' for item in chosen)}); nothing was touched"
            )
        owner = max(owners, key=lambda item: len(item.root))
        assigned[owner.name].append(paths.check_glob(pattern, owner.root))
    return assigned


def _covers(root: str, pattern: str) -> bool:
    try:
        paths.check_glob(pattern, root)
    except paths.PathEscapeError:
        return False
    return True


def build_plan(
    config: dict[str, Any],
    *,
    names: list[str] | None,
    extra_paths: list[str] | None,
    alert: dict[str, Any] | None,
    dry_run: bool,
    host_queues: list[str],
    state_dir: str,
    now_iso: str,
    note: str = "",
) -> dict[str, Any]:
    """The run's plan: one work item per log set, grouped by host queue key, plus a summary for the report."""
    log_sets = parse_log_sets(config)
    chosen, why = select_log_sets(log_sets, names, alert)
    extra = assign_extra_paths(chosen, extra_paths, allowed_roots(config))
    plan: dict[str, Any] = {queue_key(None): [], **{queue_key(queue): [] for queue in host_queues}}
    for log_set in chosen:
        if log_set.queue is not None and log_set.queue not in host_queues:
            raise LogRotationConfigError(
                f"log set {log_set.name} names queue {log_set.queue!r}, which is not in host_queues "
                f"({', '.join(host_queues) or 'none'}) of include/config/log_rotation.yaml: the DAG has no task "
                "for that host. Add it there (a deploy-time setting) and start a worker with that queue."
            )
        plan[queue_key(log_set.queue)].append(
            {
                "log_set": log_set.as_dict(),
                "extra_globs": extra[log_set.name],
                "dry_run": dry_run,
                "state_dir": state_dir,
            }
        )
    plan["summary"] = {
        "log_sets": [item.name for item in chosen],
        "why": why,
        "dry_run": dry_run,
        "note": note,
        "planned_at": now_iso,
        "channels": {item.name: item.channel for item in chosen},
    }
    return plan
