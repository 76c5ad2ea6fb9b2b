"""Fixtures for answering from Slack: a signing secret, respondents, HITL questions in this session's metadata DB,
and the endpoint in a test client, with a clock the tests control."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

SECRET = "test-signing-secret-8f1c2d3e4a5b6c7d"
ALICE, BOB, CAROL, MALLORY = "U0ALICE", "U0BOB", "U0CAROL", "U0MALLORY"
#: Slack user -> Airflow user. MALLORY is not mapped; BOB is a viewer (may not answer); CAROL is an op.
RESPONDENTS = {ALICE: "alice", BOB: "bob", CAROL: "carol"}
AIRFLOW_USERS = "alice:op,bob:viewer,carol:op"


@dataclass
class Question:
    """A HITL task waiting in the metadata DB (what ApprovalOperator writes when it asks)."""

    dag_id: str
    run_id: str
    task_id: str
    ti_id: uuid.UUID
    try_number: int = 1

    @property
    def ref(self) -> dict[str, Any]:
        from toilless.slack_actions import buttons

        return buttons.hitl_ref(self.dag_id, self.run_id, self.task_id, -1, self.try_number)

    def detail(self) -> dict[str, Any]:
        from airflow.models.hitl import HITLDetail
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session

        with create_session() as session:
            row = session.get(HITLDetail, self.ti_id)
            ti = session.get(TaskInstance, self.ti_id)
            return {
                "chosen_options": row.chosen_options,
                "responded_by": row.responded_by,
                "responded_at": row.responded_at,
                "state": str(ti.state.value if hasattr(ti.state, "value") else ti.state),
            }

    def audit_rows(self) -> int:
        from airflow.models.log import Log
        from airflow.utils.session import create_session
        from sqlalchemy import func, select

        with create_session() as session:
            return session.scalar(
                select(func.count()).where(
                    Log.event == "slack_actions.answer_hitl", Log.run_id == self.run_id, Log.dag_id == self.dag_id
                )
            )


@pytest.fixture
def signing_secret(set_connection: Callable[[str, dict[str, Any]], None]) -> str:
    set_connection("slack_signing_secret", {"conn_type": "generic", "password": SECRET})
    return SECRET


@pytest.fixture
def respondents(set_variable: Callable[[str, Any], None], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", AIRFLOW_USERS)
    set_variable(
        "toilless_slack_actions", {"respondents": RESPONDENTS, "response_url_hosts": ["hooks.slack.com", "127.0.0.1"]}
    )
    return RESPONDENTS


@pytest.fixture
def ask(airflow_db: Any) -> Callable[..., Question]:
    """Write a waiting HITL question: ``ask(timeout=timedelta(minutes=30), assigned=["alice"], ...)``."""

    def _ask(
        *,
        timeout: timedelta = timedelta(minutes=30),
        assigned: list[str] | None = None,
        defaults: list[str] | None = None,
        state: str = "awaiting_input",
        try_number: int = 1,
        answered: dict[str, Any] | None = None,
        parked_ago: timedelta = timedelta(minutes=1),
    ) -> Question:
        from airflow.models.dagrun import DagRun
        from airflow.models.hitl import HITLDetail
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from sqlalchemy import insert

        dag_id = f"slack_actions_test_{uuid.uuid4().hex[:8]}"
        run_id = f"manual__{uuid.uuid4().hex[:8]}"
        ti_id = uuid.uuid4()
        now = datetime.now(UTC)
        with create_session() as session:
            session.execute(
                insert(DagRun.__table__).values(
                    dag_id=dag_id, run_id=run_id, run_type="manual", state="running", run_after=now
                )
            )
            session.execute(
                insert(TaskInstance.__table__).values(
                    id=ti_id,
                    dag_id=dag_id,
                    run_id=run_id,
                    task_id="request_approval",
                    map_index=-1,
                    try_number=try_number,
                    pool="default_pool",
                    pool_slots=1,
                    queue="default",
                    priority_weight=1,
                    state=state,
                    trigger_timeout=now + timeout,
                    max_tries=0,
                    hostname="",
                    unixname="",
                    executor_config=b"\x80\x05}\x94.",
                    updated_at=now - parked_ago,  # when the task parked (hitl.PARK_SETTLE_SECONDS)
                )
            )
            values: dict[str, Any] = {
                "ti_id": ti_id,
                "options": ["Approve", "Reject"],
                "subject": "Grow RDS storage (permanent): db-1",
                "body": "db-1 100 GiB -> 146 GiB",
                "defaults": defaults if defaults is not None else ["Reject"],
                "multiple": False,
                "params": {},
                "params_input": {},
                "assignees": [{"id": name, "name": name} for name in assigned] if assigned else None,
                "created_at": now,
            }
            if answered:
                values.update(answered)
            session.execute(insert(HITLDetail.__table__).values(**values))
        return Question(dag_id, run_id, "request_approval", ti_id, try_number)

    return _ask


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(signing_secret: str, respondents: dict[str, str], clock: Clock) -> Iterator[Any]:
    """The endpoint under ``/toilless`` as the API server mounts it (a fresh router: its own replay memory)."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from toilless.slack_actions.router import create_router

    app = FastAPI()
    app.include_router(create_router(clock=clock))
    outer = FastAPI()
    outer.mount("/toilless", app)
    with TestClient(outer) as test_client:
        yield test_client


@pytest.fixture
def press(client: Any) -> Callable[..., Any]:
    """Press a button of ``question`` as ``user`` with a correct signature (or a tampered one)."""
    from toilless.slack_actions import buttons
    from toilless.slack_actions.press import payload_for, signed_request

    def _press(
        question: Question,
        option: str = "Approve",
        *,
        user: str = ALICE,
        secret: str = SECRET,
        timestamp: int | None = None,
        message: dict[str, Any] | None = None,
        channel: str = "C0URGENT",
        response_url: str = "",
        raw: tuple[bytes, dict[str, str]] | None = None,
    ) -> Any:
        if raw is None:
            block = buttons.actions_block(buttons.hitl_buttons(question.ref, ["Approve", "Reject"]))
            button = next(b for b in block["elements"] if b["text"]["text"] == option)
            found = {"label": option, "action_id": button["action_id"], "value": button["value"], "block_id": "x"}
            original = message or {"ts": "1700000000.000100", "text": "Approval needed", "blocks": [block]}
            payload = payload_for(found, message=original, channel=channel, user_id=user, response_url=response_url)
            raw = signed_request(secret, payload, timestamp=timestamp)
        body, headers = raw
        return client.post("/toilless/slack/actions", content=body, headers=headers)

    return _press
