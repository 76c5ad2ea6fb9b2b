"""
# Log rotation and the low-storage guard

**SOP:** "Scheduled log rotation and low storage" (SOPS.md). One engineer ran the clean-up by hand every morning; he
fell ill, nobody did it, and the log mount filled up. This DAG does it every day, loses nothing, and tells
Compliance what was freed and what is still low.

## What fires it
- **Schedule:** daily at `schedule.time` in `schedule.timezone` (include/config/log_rotation.yaml; default 04:30 UTC).
- **Manual:** *Trigger DAG w/ config*: choose log sets, add paths, tick *Dry run* to see exactly what would happen.
- **Alert:** the low-storage alert (through the alert intake, conf `alert`). Labels `log_set` or `mountpoint`
  narrow the run to the matching log sets; an alert they match no log set of ("no matching target") rotates nothing
  and the report says so.

## Steps
1. `plan_rotation`: reads the log sets (YAML + Variable `toilless_log_rotation`), picks the ones for this run,
   checks every extra path is under the allowed roots and a chosen log set (else fails: nothing touched).
   `select_host_work` hands each host queue its log sets.
2. `rotate_logs` (one mapped task per log set, on the Celery queue of the host owning the files): under the log
   set's lock, asks the action gate (maintenance window, once per incident, cool-down, circuit breaker; `gate` in
   the YAML); a held log set changes nothing and the report says why. Then it finishes what an interrupted run
   left, and per live file at least `min_size` large:
   - `rename` mode: rename it to `<file>.<UTC stamp>.<n>`, create a new empty file with the same mode and owner,
     signal the writer to reopen (pid file + signal, or a command); compress once no process holds the old file.
   - `copytruncate` mode: copy, then truncate in place, for writers that cannot reopen; reports the growth during
     the copy and the (microseconds) window in which lines could be lost.
   - compression (zstd, or gzip) streams through a hidden temporary file, fsyncs and verifies it (decompressed,
     CRC-32 and length compared with the source) before the source goes. A crash leaves the source or a verified archive.
3. `apply_retention`: deletes only this DAG's archives (`<file>.<stamp>.<n>.zst|.gz`) beyond the log set's
   retention (age, count, total size), after the action gate allows it. Nothing else, ever.
4. `measure_mount_usage`: how full the mount is, how fast it grew, and (at warning) the largest files and
   directories.
5. `warn_low_storage`: at or above the warning threshold (default 70 %) tells the log set's channel (Compliance);
   at critical (default 90 %) the `urgent` channel too.
6. `report_rotation`: tells each log set's channel what was rotated, compressed and deleted, bytes before and
   after. Fails the run (after reporting) if any log set failed.

## Safety
Only paths under `allowed_roots` are touched; symlinks are never followed out of a root; a Param path outside them
fails the run before anything changes. Dry run changes nothing. Every step is safe to retry. See
docs/log_rotation.md for the per-host Celery queues and the copytruncate window.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from airflow.sdk import CronTriggerTimetable, Param, dag

from toilless.common.config import read_defaults
from toilless.common.dag_defaults import default_args, task
from toilless.common.params import alert_param, dry_run_param
from toilless.sops.log_rotation import steps
from toilless.sops.log_rotation.planning import queue_key

# Deploy-time settings, from the YAML file only: the schedule and the host queues shape the DAG itself, and a
# Variable must not be read while parsing.
_DEPLOY = read_defaults("log_rotation")
_SCHEDULE = _DEPLOY.get("schedule") or {}
_HOUR, _MINUTE = (int(part) for part in str(_SCHEDULE.get("time", "04:30")).split(":"))
HOST_QUEUES: list[str] = list(_DEPLOY.get("host_queues") or [])


@task
def plan_rotation(host_queues: list[str]) -> dict[str, Any]:
    """Pick the log sets and validate every path before anything is touched."""
    return steps.plan_rotation(host_queues)


@task
def select_host_work(plan: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The work items of one host queue (an empty list skips that host's tasks)."""
    return steps.select_host_work(plan, key)


@task(map_index_template="{{ log_set_name }}")
def rotate_logs(work: dict[str, Any]) -> dict[str, Any]:
    """Rotate and compress one log set's files (on the host owning them)."""
    return steps.rotate_logs(work)


@task(map_index_template="{{ log_set_name }}")
def apply_retention(rotated: dict[str, Any]) -> dict[str, Any]:
    """Delete this DAG's archives beyond retention (a dry run lists them)."""
    return steps.apply_retention(rotated)


@task(map_index_template="{{ log_set_name }}")
def measure_mount_usage(retained: dict[str, Any]) -> dict[str, Any]:
    """Measure the log set's mount after rotation: usage, growth, largest files."""
    return steps.measure_mount_usage(retained)


@task(trigger_rule="all_done")
def warn_low_storage(plan: dict[str, Any] | None, measured: list[Any]) -> dict[str, Any]:
    """Tell the channel (and urgent at critical) about mounts still at or above the warning threshold."""
    return steps.warn_low_storage(plan, measured)


@task(trigger_rule="all_done")
def report_rotation(plan: dict[str, Any] | None, measured: list[Any]) -> dict[str, Any]:
    """Tell each log set's channel what was rotated, compressed and freed; fail the run if a log set failed."""
    return steps.report_rotation(plan, measured)


def _task_suffix(queue: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", queue)


@dag(
    dag_id="log_rotation",
    doc_md=__doc__,
    # No start_date and run_immediately=False: deploying or unpausing the DAG does not rotate at once (with a
    # start_date, catchup=False would still start the most recent missed run); the first run is the next slot.
    schedule=CronTriggerTimetable(
        f"{_MINUTE} {_HOUR} * * *", timezone=str(_SCHEDULE.get("timezone", "UTC")), run_immediately=False
    ),
    catchup=False,
    # Two runs rotating the same files at once would race; a per-log-set lock on each host backs this up.
    max_active_runs=1,
    tags=["sop", "logs", "storage", "compliance"],
    default_args=default_args(owner="sre-platform", retries=2, retry_delay=timedelta(minutes=1)),
    params={
        "log_sets": Param(
            [],
            type=["null", "array"],
            items={"type": "string"},
            title="Log sets",
            description="Names of the log sets to rotate (include/config/log_rotation.yaml). Empty: all of them.",
        ),
        "paths": Param(
            [],
            type=["null", "array"],
            items={"type": "string"},
            title="Extra paths",
            description=(
                "Absolute file paths or globs to rotate in addition, with the policy of the log set whose root "
                "holds them. Anything outside the allowed roots is rejected and nothing is touched."
            ),
        ),
        "dry_run": dry_run_param(),
        "alert": alert_param(),
    },
)
def log_rotation() -> None:
    plan = plan_rotation(HOST_QUEUES)
    measured = []
    for queue in [None, *HOST_QUEUES]:
        # A host's files are touched only by tasks on that host's queue (one Celery worker per host).
        suffix = "" if queue is None else f"_on_{_task_suffix(queue)}"
        route: dict[str, Any] = {} if queue is None else {"queue": queue}
        work = select_host_work.override(task_id=f"select_host_work{suffix}")(plan, queue_key(queue))
        rotated = rotate_logs.override(task_id=f"rotate_logs{suffix}", **route).expand(work=work)
        retained = apply_retention.override(task_id=f"apply_retention{suffix}", **route).expand(rotated=rotated)
        measured.append(
            measure_mount_usage.override(task_id=f"measure_mount_usage{suffix}", **route).expand(retained=retained)
        )
    warn_low_storage(plan, measured)
    report_rotation(plan, measured)


log_rotation()
