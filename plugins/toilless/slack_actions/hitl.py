"""Answer a human-in-the-loop task as its Airflow user, through the function behind Airflow's own REST route.

``PATCH /api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/hitlDetails`` (what the UI's
Required Actions page sends) is served by
``airflow.api_fastapi.core_api.routes.public.hitl.update_hitl_detail``. This module calls that function in the API
server's process, with the mapped Airflow user and a metadata-DB session, after the same permission check the route's
dependency makes (``is_authorized_dag(PUT, HITL_DETAIL)``). So the answer has exactly the UI's semantics: the
respondent check against ``assigned_users``, option validation, the row locks (task instance, then HITL row),
"already answered" (409), and the event-driven resume of the parked task. Calling it over HTTP instead would need a
token for every mapped user (their passwords, or minting JWTs) and a loopback call from the API server to itself.

Three things are added here, because a Slack button can be pressed long after it was posted:

* a press after the response timeout is refused as "already decided: <default> by timeout" even before the
  scheduler's sweep (every few seconds) writes the default: Airflow's route would still accept it then;
* a button of an earlier try (the task asked again after a clear) does not answer the new request: the button
  carries the try number (Airflow 3.3.2 has no ``request_created_at`` check yet; later versions add one);
* a press within :data:`PARK_SETTLE_SECONDS` of the task parking is not answered yet ("press again in a few
  seconds"): answered that soon, Airflow 3.3 can resume the task before its scheduler has processed the executor's
  event for the process that parked, then reads that late "success" event, finds the task queued or running and
  fails it, so nothing the person approved happens (apache/airflow#66374, #71580, #72716; our rds_near_full drill
  hit it twice when answering 2 s after the park). Airflow's own UI route has no such guard;
* on SQLite, ``SELECT ... FOR UPDATE`` does nothing, so two presses at once could both read "no answer yet" and
  both write. The transaction starts with a no-op write to the task-instance row, which takes SQLite's write lock
  first: the second press waits, then reads the first one's answer. PostgreSQL and MySQL rely on the route's locks.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from toilless.slack_actions import decisions
from toilless.slack_actions.decisions import Outcome

log = logging.getLogger(__name__)

_WAITING = ("awaiting_input", "deferred")
#: How long after a task parked (its row's ``updated_at``) a press waits to be answered (see the module docstring).
PARK_SETTLE_SECONDS = 10.0


class UnknownUser(LookupError):
    """The mapped Airflow user does not exist in the auth manager."""


def airflow_user(name: str) -> Any:
    """The auth manager's user object for ``name`` (simple auth manager: a configured user name; other managers:
    what their tokens carry as ``sub``)."""
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    manager = create_auth_manager()  # the API server's singleton (created here in tests and tools)
    if isinstance(manager, SimpleAuthManager):
        for user in SimpleAuthManager.get_users():
            if user.username == name:
                return user
        raise UnknownUser(name)
    try:
        return manager.deserialize_user({"sub": name})
    except Exception as err:
        raise UnknownUser(name) from err


def answer(ref: Mapping[str, Any], option: str, user_name: str, *, now: datetime | None = None) -> Outcome:
    """Answer the HITL task ``ref`` (see :func:`toilless.slack_actions.buttons.hitl_ref`) with ``option`` as
    ``user_name``. Never decides twice: a question already answered (by anyone, or by the timeout) is reported,
    not answered again."""
    try:
        dag_id, run_id, task_id = str(ref["d"]), str(ref["r"]), str(ref["t"])
        map_index, try_number = int(ref["m"]), int(ref["n"])
    except (KeyError, TypeError, ValueError):
        return Outcome(decisions.INVALID, 400, "this button does not name a question")
    try:
        user = airflow_user(user_name)
    except UnknownUser:
        log.warning("Slack press mapped to Airflow user %r, who does not exist: refused", user_name)
        return Outcome(decisions.REFUSED, 403, f"you are mapped to Airflow user {user_name!r}, who does not exist")
    now = now or datetime.now(UTC)
    # Before the transaction: the team lookup opens a session of its own (provide_session), and Airflow's sessions
    # are thread-scoped, so inside the transaction it would commit it and release the lock taken below.
    allowed = _allowed(dag_id, user)

    from airflow.utils.session import create_session

    with create_session() as session:
        try:
            return _answer_locked(
                session, dag_id, run_id, task_id, map_index, try_number, option, user, now, allowed=allowed
            )
        except BaseException:
            session.rollback()
            raise


def _answer_locked(
    session: Any,
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: int,
    try_number: int,
    option: str,
    user: Any,
    now: datetime,
    *,
    allowed: bool,
) -> Outcome:
    from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
    from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
    from airflow.models.taskinstance import TaskInstance as TI
    from fastapi import HTTPException
    from sqlalchemy import select, update
    from sqlalchemy.orm import joinedload

    where = (TI.dag_id == dag_id, TI.run_id == run_id, TI.task_id == task_id, TI.map_index == map_index)
    # The lock comes first, before anything is read into this session (see the module docstring).
    if session.get_bind().dialect.name == "sqlite":
        # updated_at given as itself: its onupdate default would otherwise stamp "now" on the row (the park time).
        session.execute(
            update(TI)
            .where(*where)
            .values(id=TI.id, updated_at=TI.updated_at)
            .execution_options(synchronize_session=False)
        )
    else:
        session.execute(select(TI.id).where(*where).with_for_update(of=TI))
    ti = session.scalar(select(TI).where(*where).options(joinedload(TI.hitl_detail)))
    if ti is None or ti.hitl_detail is None:
        return Outcome(decisions.MISSING, 404, "this question no longer exists in Airflow (run deleted or cleared)")
    detail = ti.hitl_detail
    if detail.response_received:
        return _already(detail)
    if ti.try_number != try_number:
        return Outcome(
            decisions.REPLACED,
            409,
            f"this request was asked again (try {ti.try_number}, the button is from try {try_number}): "
            "answer the newest message or in Airflow",
        )
    if str(ti.state) not in _WAITING and getattr(ti.state, "value", None) not in _WAITING:
        return Outcome(decisions.NOT_WAITING, 409, f"the task is no longer waiting for an answer (it is {ti.state})")
    if ti.trigger_timeout is not None and ti.trigger_timeout <= now:
        # The scheduler is about to apply the defaults; Airflow's route would still take an answer now.
        defaults = list(detail.defaults or [])
        if defaults:
            text = decisions.already_decided_text(defaults, None, ti.trigger_timeout)
            line = decisions.decided_line(defaults, None, ti.trigger_timeout)
            return Outcome(decisions.ALREADY_DECIDED, 200, text, line, {"chosen_options": defaults, "by": None})
        return Outcome(decisions.NOT_WAITING, 409, "the response timeout has passed: the task fails without answer")
    if not allowed:
        return Outcome(decisions.REFUSED, 403, "your Airflow user may not answer this DAG's questions")
    parked_at = ti.updated_at
    if parked_at is not None and (now - parked_at).total_seconds() < PARK_SETTLE_SECONDS:
        return Outcome(
            decisions.NOT_READY,
            409,
            "Airflow is still setting this request up (the task parked seconds ago): press again in a few seconds",
        )
    try:
        response = update_hitl_detail(
            dag_id=dag_id,
            dag_run_id=run_id,
            task_id=task_id,
            update_hitl_detail_payload=UpdateHITLDetailPayload(chosen_options=[option], params_input={}),
            user=user,
            session=session,
            map_index=map_index,
        )
    except HTTPException as err:
        session.rollback()
        status = {400: decisions.INVALID, 403: decisions.REFUSED, 404: decisions.MISSING}.get(err.status_code)
        if err.status_code == 403:
            return Outcome(decisions.REFUSED, 403, "you are not a respondent for this question")
        if status:
            return Outcome(status, err.status_code, str(err.detail))
        raise
    _audit(session, ti, user, option)
    by = response.responded_by.name
    at = response.responded_at
    return Outcome(
        decisions.DECIDED,
        200,
        f"{decisions.decision_phrase(response.chosen_options, by)} at {decisions.when(at)}",
        "",
        {"chosen_options": list(response.chosen_options), "by": by, "responded_at": at.isoformat()},
    )


def _already(detail: Any) -> Outcome:
    chosen = list(detail.chosen_options or [])
    by = detail.responded_by_user_name
    at = detail.responded_at
    return Outcome(
        decisions.ALREADY_DECIDED,
        200,
        decisions.already_decided_text(chosen, by, at),
        decisions.decided_line(chosen, by, at),
        {"chosen_options": chosen, "by": by, "responded_at": at.isoformat() if at else None},
    )


def _allowed(dag_id: str, user: Any) -> bool:
    """The route's own dependency: ``requires_access_dag(method="PUT", access_entity=HITL_DETAIL)``."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from airflow.models.dag import DagModel

    return bool(
        get_auth_manager().is_authorized_dag(
            method="PUT",
            access_entity=DagAccessEntity.HITL_DETAIL,
            details=DagDetails(id=dag_id, team_name=DagModel.get_team_name(dag_id)),
            user=user,
        )
    )


def _audit(session: Any, ti: Any, user: Any, option: str) -> None:
    """An audit-log row like the route's ``action_logging`` writes, saying the answer came from Slack."""
    from airflow.models.log import Log

    session.add(
        Log(
            event="slack_actions.answer_hitl",
            task_instance=ti,
            owner=user.get_name(),
            extra=json.dumps({"chosen_options": [option], "via": "slack"}),
        )
    )
