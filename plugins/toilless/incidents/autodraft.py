"""Start ``postmortem_draft`` the moment a P0/P1 incident resolves (issue 18: "automatically when a P0/P1 incident
resolves"), instead of waiting up to ten minutes for its schedule.

The intake calls :func:`request_drafts` with the incidents whose alert just resolved. The caller is the intake's
drain, inside its metadata-DB transaction (on SQLite that transaction holds the one write lock), so nothing is
triggered there: the ids go to one background thread of the API server, which reads each incident's severity from
the incident record and starts one run per incident (run id ``postmortem__<incident>``: a repeated resolve finds
the run and starts nothing). The schedule stays as the fallback for a start that failed (API server restarted,
DAG paused, database away): it drafts every resolved P0/P1 incident without a draft. Filing stays "never twice"
either way (the marker on the issue).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

log = logging.getLogger(__name__)

DAG_ID = "postmortem_draft"
RUN_ID_PREFIX = "postmortem__"
TRIGGERING_USER = "toilless-incident-record"
#: Tries to start one run (the metadata DB busy, the DAG not parsed yet), with the backoff below between them.
START_ATTEMPTS = 5
BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0)

_pending: queue.Queue[str] = queue.Queue()
_worker: list[threading.Thread] = []
_worker_lock = threading.Lock()


def request_drafts(incident_ids: Iterable[str]) -> None:
    """Queue resolved incidents for an immediate draft (the background thread decides which need one). Never
    raises, never blocks."""
    try:
        queued = 0
        for incident_id in dict.fromkeys(incident_ids):
            _pending.put_nowait(str(incident_id))
            queued += 1
        if queued:
            _ensure_worker()
    except Exception:
        log.exception("Post-mortem drafts could not be requested; the postmortem_draft schedule drafts them")


def _ensure_worker() -> None:
    with _worker_lock:
        if _worker and _worker[0].is_alive():
            return
        thread = threading.Thread(target=_work, name="toilless-postmortem-autodraft", daemon=True)
        thread.start()
        _worker[:] = [thread]


def _work() -> None:
    while True:
        incident_id = _pending.get()
        try:
            start_draft(incident_id)
        except Exception:
            log.exception("Post-mortem draft of incident %s not started; the schedule drafts it", incident_id)
        finally:
            _pending.task_done()


def due_for_draft(incident: Mapping[str, Any] | None, auto_severities: Iterable[str]) -> bool:
    """Pure: a resolved incident of an automatic severity without a draft yet."""
    return bool(
        incident
        and incident.get("resolved_at") is not None
        and not incident.get("postmortem_url")
        and incident.get("severity") in set(auto_severities)
    )


def start_draft(
    incident_id: str,
    *,
    trigger: Callable[[str, str, dict[str, Any]], bool] | None = None,
    settings: Mapping[str, Any] | None = None,
    pause: Callable[[float], None] = time.sleep,
) -> str:
    """Start the draft run of one resolved incident if it is due; returns what happened (for the log and tests):
    ``started``, ``already started``, ``not due`` or ``failed``."""
    from toilless.incidents import db, store

    if settings is None:
        from toilless.incidents.settings import load_settings

        settings = load_settings()
    auto = (settings.get("postmortem") or {}).get("auto_severities", ["P0", "P1"])
    if not due_for_draft(store.get_incident(db.engine(), incident_id), auto):
        return "not due"
    trigger = trigger or _trigger
    run_id = f"{RUN_ID_PREFIX}{incident_id}"
    last_error: BaseException | None = None
    for attempt in range(START_ATTEMPTS):
        if attempt:
            pause(BACKOFF_SECONDS[min(attempt - 1, len(BACKOFF_SECONDS) - 1)])
        try:
            created = trigger(DAG_ID, run_id, {"incident_id": incident_id})
        except Exception as err:
            last_error = err
            continue
        log.info("Post-mortem draft of incident %s: run %s %s", incident_id, run_id, "started" if created else "exists")
        return "started" if created else "already started"
    log.warning(
        "Post-mortem draft of incident %s not started after %s tries (%s: %s); the schedule drafts it",
        incident_id,
        START_ATTEMPTS,
        type(last_error).__name__,
        str(last_error)[:200],
    )
    return "failed"


def _trigger(dag_id: str, run_id: str, conf: dict[str, Any]) -> bool:
    """Create a queued manual run as Airflow's REST API does; False when the run already exists."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagRunAlreadyExists
    from airflow.utils.types import DagRunTriggeredByType

    try:
        trigger_dag(
            dag_id,
            run_id=run_id,
            conf=conf,
            triggered_by=DagRunTriggeredByType.REST_API,
            triggering_user_name=TRIGGERING_USER,
        )
    except DagRunAlreadyExists:
        return False
    return True
