"""``record(...)``: write one event to an incident's timeline without ever blocking or failing the caller.

The runbook, the action gate and the intake call this at the moment something happens. The write goes to the
incident database with short timeouts (:mod:`toilless.incidents.db`); if it fails for any reason (database away,
locked, a bug) the event goes to the local outbox (:mod:`toilless.incidents.outbox`) and is written by a later
drain: the next successful write in this process (at most once a minute) or the escalation sweeper (every two
minutes). Every failure is logged with what happened to the event. Nothing here raises.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from toilless.incidents import events as ev

log = logging.getLogger(__name__)

#: Seconds between opportunistic outbox drains in one process.
DRAIN_EVERY_SECONDS = 60.0

_state = {"last_drain": 0.0}
_drain_lock = threading.Lock()
#: What this process recorded, for tests and the self-check: written, outboxed, lost.
stats = {"written": 0, "outboxed": 0, "lost": 0}


def record(
    kind: str,
    *,
    incident_id: str | None = None,
    alert: Mapping[str, Any] | None = None,
    actor: str = "toilless",
    summary: str = "",
    data: Mapping[str, Any] | None = None,
    at: float | datetime | None = None,
    dedupe: str = "",
) -> bool:
    """Record one event; True when it is in the database now, False when it waits in the outbox (or, if even the
    local disk refused, was lost: logged as an error). Never raises.

    :param kind: one of :data:`toilless.incidents.events.KINDS`
    :param incident_id: the incident; or ``alert`` (a run conf's alert object) to derive it
    :param actor: who did it (a person's name for acknowledgements and approvals; ``toilless`` for the system)
    :param dedupe: a stable discriminator: the same fact recorded twice (retries) is stored once
    """
    try:
        incident_id = incident_id or ev.incident_of_alert(alert)
        if not incident_id:
            log.debug("Incident event %s without an incident (no alert): not recorded", kind)
            return False
        item = ev.make_event(incident_id, kind, at=at, actor=actor, summary=summary, data=data, dedupe=dedupe)
    except Exception:
        log.exception("Incident event %s could not be built: not recorded", kind)
        return False
    return record_events([item])


def record_events(batch: Sequence[ev.Event]) -> bool:
    """Record prepared events in one transaction (see :func:`record`). Never raises."""
    if not batch:
        return True
    try:
        from toilless.incidents import db, store

        store.write_events(db.engine(), batch)
        stats["written"] += len(batch)
    except Exception as err:
        return _to_outbox(batch, err)
    _maybe_drain()
    return True


def _to_outbox(batch: Sequence[ev.Event], err: BaseException) -> bool:
    from toilless.common.redaction import mask_secrets
    from toilless.incidents import outbox

    reason = mask_secrets(f"{type(err).__name__}: {err}")[:300]
    try:
        outbox.append(batch)
    except Exception:
        stats["lost"] += len(batch)
        log.exception(
            "Incident record: %s event(s) LOST: database write failed (%s) and the outbox refused", len(batch), reason
        )
        return False
    stats["outboxed"] += len(batch)
    log.warning(
        "Incident record: database write failed (%s); %s event(s) kept in the outbox %s for a retry",
        reason,
        len(batch),
        outbox.outbox_dir(),
    )
    return False


def _maybe_drain() -> None:
    now = time.monotonic()
    if now - _state["last_drain"] < DRAIN_EVERY_SECONDS or not _drain_lock.acquire(blocking=False):
        return
    try:
        _state["last_drain"] = now
        from toilless.incidents import outbox

        if outbox.pending():
            flush_outbox()
    except Exception:
        log.exception("Incident outbox drain failed; it is retried later")
    finally:
        _drain_lock.release()


def flush_outbox() -> dict[str, int]:
    """Write every event waiting in this host's outbox; returns the drain's counts (see outbox.drain)."""
    from toilless.incidents import db, outbox, store

    counts = outbox.drain(lambda chunk: store.write_events(db.engine(), chunk))
    if counts["written"] or counts["left"]:
        log.info("Incident outbox drained: %s", counts)
    return counts


def record_from_context(kind: str, context: Mapping[str, Any] | None = None, **kwargs: Any) -> bool:
    """Record an event for the incident of the running task's DAG run (its conf's ``alert``). Runs without an
    alert (scheduled, manual without one) are no incident: nothing is recorded. Never raises."""
    try:
        context = context if context is not None else _current_context()
        if not context:
            return False
        alert = _alert_of(context)
        if alert is None:
            return False
        data = dict(kwargs.pop("data", None) or {})
        dag = context.get("dag")
        ti = context.get("ti") or context.get("task_instance")
        data.setdefault("dag_id", getattr(dag, "dag_id", None) or getattr(ti, "dag_id", None))
        data.setdefault("run_id", context.get("run_id"))
        data.setdefault("task_id", getattr(ti, "task_id", None))
        return record(kind, alert=alert, data=data, **kwargs)
    except Exception:
        log.exception("Incident event %s from a task context could not be recorded", kind)
        return False


def _current_context() -> Mapping[str, Any] | None:
    try:
        from airflow.sdk import get_current_context

        return get_current_context()
    except Exception:
        return None  # not inside a task (unit tests, the API server)


def _alert_of(context: Mapping[str, Any]) -> Mapping[str, Any] | None:
    params = context.get("params") or {}
    alert = params.get("alert") if hasattr(params, "get") else None
    if not alert:
        conf = getattr(context.get("dag_run"), "conf", None) or {}
        alert = conf.get("alert") if isinstance(conf, Mapping) else None
    return alert if isinstance(alert, Mapping) and ev.incident_of_alert(alert) else None


def gate_verdict(verdict: Any) -> bool:
    """The action gate's verdict (a :class:`toilless.common.gate.GateVerdict`) on the running task's incident."""
    return record_from_context(ev.GATE_VERDICT, summary=verdict.reason, data=verdict.as_dict())


def message_sent(channel: str, text: str) -> bool:
    """A Slack message the running task posted (its first line; the channel name)."""
    first = (text.splitlines() or [""])[0][:200]
    return record_from_context(ev.MESSAGE_SENT, summary=first, data={"channel": channel})


def approval(context: Mapping[str, Any], answer: Mapping[str, Any]) -> bool:
    """A person's answer to an approval task (who, which option; no answer = timed out)."""
    who = answer.get("responded_by_user")
    name = (who.get("name") or who.get("id")) if isinstance(who, Mapping) else who
    options = ", ".join(str(option) for option in answer.get("chosen_options") or []) or "no answer"
    return record_from_context(
        ev.APPROVAL,
        context,
        actor=str(name or "timeout"),
        summary=f"{options} ({'timed out' if not name else 'answered'})",
        data={"chosen_options": list(answer.get("chosen_options") or [])},
    )


class ActionRecord:
    """What :func:`action_result` records: ``done`` unless the wrapped call raised or :meth:`check` says otherwise."""

    def __init__(self) -> None:
        self.result = "done"
        self.detail = ""
        #: False: nothing was attempted (the gate held it, whose verdict is on the timeline already, or there was
        #: nothing to change), so no action is recorded.
        self.attempted = True

    def check(self, ok: Any, detail: Any = "") -> Any:
        """For calls that answer instead of raising: a falsy ``ok`` records ``not done`` with ``detail``. Returns
        ``ok`` so the call stays one line: ``ended = act.check(hook.terminate_backend(...), "it changed")``."""
        if not ok:
            self.result, self.detail = "not done", str(detail or "")
        return ok


@contextmanager
def action_result(
    action: str,
    target: Any,
    *,
    incident_id: str | None = None,
    actor: str = "toilless",
    data: Mapping[str, Any] | None = None,
) -> Iterator[ActionRecord]:
    """Record the result of the irreversible call it wraps: ``action X on target Y: done``, ``not done (why)`` or
    ``failed (error)`` (the error's type and its masked, bounded text) on the incident's timeline. An error is
    re-raised unchanged.

    Inside a task the incident is the run's (its conf's ``alert``; runs without one record nothing); outside one
    (the Slack endpoint) pass ``incident_id``. Recording never raises and never delays the action (it happens
    after the call returns or fails, and :func:`record` falls back to the outbox)::

        with action_result("restart", service):
            hook.restart(service)
    """
    act = ActionRecord()
    try:
        yield act
    except BaseException as err:
        _action_event(action, target, "failed", f"{type(err).__name__}: {err}", incident_id, actor, data)
        raise
    if act.attempted:
        _action_event(action, target, act.result, act.detail, incident_id, actor, data)


def _action_event(
    action: str,
    target: Any,
    result: str,
    detail: str,
    incident_id: str | None,
    actor: str,
    data: Mapping[str, Any] | None,
) -> None:
    try:
        from toilless.common.redaction import mask_secrets

        action, target = str(action)[:100], str(target)[:300]
        detail = mask_secrets(detail)[:300]
        summary = f"{action} on {target}: {result}" + (f" ({detail})" if detail else "")
        payload = {**(data or {}), "action": action, "target": target, "result": result}
        if detail:
            payload["detail"] = detail
        if incident_id:
            record(ev.ACTION, incident_id=incident_id, actor=actor, summary=summary, data=payload)
        else:
            record_from_context(ev.ACTION, actor=actor, summary=summary, data=payload)
    except Exception:
        log.exception("Incident event for action %s could not be recorded", action)
