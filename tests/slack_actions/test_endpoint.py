"""POST /toilless/slack/actions against this session's metadata DB: Airflow's own HITL route function answers.

Each question is a HITL task waiting in the DB exactly as ApprovalOperator leaves it (task instance in
awaiting_input, a hitl_detail row); the endpoint answers it the way the UI's PATCH does, or refuses.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest

from tests.slack_actions.conftest import ALICE, BOB, CAROL, MALLORY, SECRET
from toilless.slack_actions.press import signed_request


def assert_undecided(question) -> None:
    detail = question.detail()
    assert detail["responded_at"] is None
    assert detail["chosen_options"] is None
    assert detail["state"] == "awaiting_input"
    assert question.audit_rows() == 0


def test_signed_press_answers_through_airflow_hitl(ask, press) -> None:
    question = ask()

    response = press(question, "Approve", user=ALICE)

    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "decided"
    assert response.json()["text"].startswith("approved by alice at ")
    detail = question.detail()
    assert detail["chosen_options"] == ["Approve"]
    assert detail["responded_by"] == {"id": "alice", "name": "alice"}
    # Airflow's event-driven resume: the parked task is scheduled again to run execute_complete.
    assert detail["state"] == "scheduled"
    assert question.audit_rows() == 1


def test_reject_is_recorded_as_reject(ask, press) -> None:
    question = ask()
    assert press(question, "Reject", user=CAROL).json()["outcome"] == "decided"
    assert question.detail()["chosen_options"] == ["Reject"]


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param("forged", id="forged-signature"),
        pytest.param("old", id="timestamp-over-5-minutes-old"),
        pytest.param("no-headers", id="unsigned"),
        pytest.param("body-changed", id="body-changed-after-signing"),
    ],
)
def test_unverified_requests_are_refused_with_401_and_decide_nothing(ask, press, clock, tamper) -> None:
    question = ask()
    import time

    timestamp = int(time.time())
    if tamper == "forged":
        response = press(question, secret="not-the-secret")
    elif tamper == "old":
        clock.offset = 301  # the server's clock is 5 min 1 s past the request's timestamp
        response = press(question, timestamp=timestamp)
    else:
        from tests.slack_actions.conftest import Question  # noqa: F401 (fixture types only)
        from toilless.slack_actions import buttons
        from toilless.slack_actions.press import payload_for

        block = buttons.actions_block(buttons.hitl_buttons(question.ref, ["Approve", "Reject"]))
        button = block["elements"][0]
        found = {"label": "Approve", "action_id": button["action_id"], "value": button["value"]}
        payload = payload_for(found, message={"ts": "1.2", "blocks": [block]}, channel="C1", user_id=ALICE)
        body, headers = signed_request(SECRET, payload)
        if tamper == "no-headers":
            headers = {"Content-Type": headers["Content-Type"]}
        else:
            body = body.replace(b"Approve", b"Reject_")
        response = press(question, raw=(body, headers))

    assert response.status_code == 401, response.text
    assert response.json()["outcome"] == "refused"
    assert_undecided(question)


def test_replayed_request_is_refused_and_decides_nothing_more(ask, press) -> None:
    question = ask()
    from toilless.slack_actions import buttons
    from toilless.slack_actions.press import payload_for

    block = buttons.actions_block(buttons.hitl_buttons(question.ref, ["Approve", "Reject"]))
    reject = block["elements"][1]
    found = {"label": "Reject", "action_id": reject["action_id"], "value": reject["value"]}
    raw = signed_request(SECRET, payload_for(found, message={"ts": "1.2"}, channel="C1", user_id=CAROL))

    first = press(question, raw=raw)
    replay = press(question, raw=raw)

    assert first.json()["outcome"] == "decided"
    assert replay.status_code == 401
    assert "replayed" in replay.json()["text"]
    assert question.detail()["chosen_options"] == ["Reject"]
    assert question.audit_rows() == 1


@pytest.mark.parametrize(
    ("user", "assigned", "why"),
    [
        pytest.param(MALLORY, None, "not mapped to an Airflow user", id="slack-user-not-mapped"),
        pytest.param(BOB, None, "may not answer this DAG", id="airflow-viewer"),
        pytest.param(CAROL, ["alice"], "not a respondent", id="not-in-assigned-users"),
    ],
)
def test_non_respondents_get_403_and_decide_nothing(ask, press, user, assigned, why) -> None:
    question = ask(assigned=assigned)

    response = press(question, "Approve", user=user)

    assert response.status_code == 403, response.text
    assert why in response.json()["text"]
    assert_undecided(question)


def test_assigned_respondent_may_answer(ask, press) -> None:
    question = ask(assigned=["alice"])
    assert press(question, user=ALICE).json()["outcome"] == "decided"


def test_double_press_decides_once_and_says_what_happened(ask, press) -> None:
    question = ask()

    first = press(question, "Approve", user=ALICE)
    second = press(question, "Reject", user=CAROL)  # a second, different, correctly signed press

    assert first.json()["outcome"] == "decided"
    assert second.status_code == 200
    assert second.json()["outcome"] == "already_decided"
    assert second.json()["text"].startswith("already decided: approved by alice at ")
    assert question.detail()["chosen_options"] == ["Approve"]
    assert question.audit_rows() == 1


def test_concurrent_presses_decide_once(ask, press) -> None:
    question = ask()
    users = [ALICE, CAROL] * 4
    barrier = threading.Barrier(len(users))
    answers: list[dict] = []
    lock = threading.Lock()

    def one(user: str, option: str) -> None:
        barrier.wait()
        response = press(question, option, user=user)
        with lock:
            answers.append(response.json())

    threads = [
        threading.Thread(target=one, args=(user, "Approve" if index % 2 else "Reject"))
        for index, user in enumerate(users)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    outcomes = sorted(answer["outcome"] for answer in answers)
    assert outcomes == ["already_decided"] * (len(users) - 1) + ["decided"], answers
    decided = next(answer for answer in answers if answer["outcome"] == "decided")
    assert question.detail()["chosen_options"] == decided["decision"]["chosen_options"]
    assert question.audit_rows() == 1


def test_concurrent_answers_in_one_process_decide_once(ask, respondents) -> None:
    """The HITL path itself, without HTTP: the SQLite write lock taken first serialises the check-and-write."""
    from toilless.slack_actions import hitl

    question = ask()
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def one(index: int) -> None:
        barrier.wait()
        outcomes.append(hitl.answer(question.ref, "Approve" if index % 2 else "Reject", "alice").outcome)

    threads = [threading.Thread(target=one, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["already_decided"] * 5 + ["decided"]
    assert question.audit_rows() == 1


def test_press_after_timeout_before_the_scheduler_applied_it(ask, press) -> None:
    """The deadline passed and the scheduler's sweep has not run yet: Airflow's route would still take an answer."""
    question = ask(timeout=-timedelta(seconds=5))

    response = press(question, "Approve", user=ALICE)

    assert response.status_code == 200
    assert response.json()["outcome"] == "already_decided"
    assert response.json()["text"].startswith("already decided: rejected by timeout")
    assert_undecided(question)


def test_press_after_the_timeout_was_applied(ask, press) -> None:
    """The scheduler wrote the default (Reject) with no respondent: that is what the presser is told."""
    from datetime import UTC, datetime

    question = ask(
        timeout=-timedelta(minutes=1),
        state="scheduled",
        answered={"chosen_options": ["Reject"], "responded_by": None, "responded_at": datetime.now(UTC)},
    )

    response = press(question, "Approve", user=ALICE)

    assert response.json()["outcome"] == "already_decided"
    assert response.json()["text"].startswith("already decided: rejected by timeout at ")
    assert question.detail()["chosen_options"] == ["Reject"]
    assert question.detail()["responded_by"] is None


def test_button_of_an_earlier_try_does_not_answer_the_new_request(ask, press) -> None:
    question = ask(try_number=2)
    question.try_number = 1  # the button was posted by try 1

    response = press(question, "Approve", user=ALICE)

    assert response.status_code == 409
    assert "asked again" in response.json()["text"]
    question.try_number = 2
    assert_undecided(question)


def test_press_seconds_after_the_task_parked_waits_then_answers(ask, press) -> None:
    """Answered that soon, Airflow 3.3 can fail the task it resumes (hitl.PARK_SETTLE_SECONDS): the first press is
    told to press again and decides nothing; once the task has been parked long enough, the same press answers."""
    from toilless.slack_actions import hitl

    question = ask(parked_ago=timedelta(seconds=2))

    early = press(question, "Approve", user=ALICE)
    assert early.status_code == 409
    assert early.json()["outcome"] == "not_ready"
    assert "press again in a few seconds" in early.json()["text"]
    assert_undecided(question)

    settled = ask(parked_ago=timedelta(seconds=hitl.PARK_SETTLE_SECONDS + 1))
    assert press(settled, "Approve", user=ALICE).json()["outcome"] == "decided"


def test_question_that_no_longer_exists(ask, press) -> None:
    question = ask()
    question.run_id = "manual__deleted"
    assert press(question).status_code == 404


def test_message_is_updated_with_who_answered_what_and_when(ask, press, slack_sink, set_connection) -> None:
    from toilless.common.reporting import post_message
    from toilless.slack_actions import buttons

    set_connection("slack_api", slack_sink.api_connection())
    question = ask()
    block = buttons.actions_block(buttons.hitl_buttons(question.ref, ["Approve", "Reject"]))
    post_message("urgent", "Approval needed: grow db-1", blocks=[block])
    posted = slack_sink.messages("urgent")[-1]
    assert [b["label"] for b in posted["buttons"]] == ["Approve", "Reject"]

    response = press(
        question,
        "Approve",
        user=ALICE,
        message=posted,
        channel="urgent",
        response_url=f"{slack_sink.url}/response/{posted['ts']}",
    )

    assert response.json()["outcome"] == "decided"
    updated = slack_sink.message(posted["ts"])
    assert [update["via"] for update in updated["updates"]] == ["chat.update"]
    assert updated["buttons"] == []
    assert "*Approved* by alice (<@U0ALICE> in Slack) at " in updated["text"]
    # A later press is told what happened, only to the presser; the message is not changed again by a decision.
    late = press(
        question,
        "Reject",
        user=CAROL,
        message=posted,
        channel="urgent",
        response_url=f"{slack_sink.url}/response/{posted['ts']}",
    )
    assert late.json()["outcome"] == "already_decided"
    replies = [m for m in slack_sink.messages() if m.get("kind") == "response"]
    assert replies
    assert replies[-1]["text"].startswith("already decided: approved by alice")


def test_response_url_outside_slack_is_never_called(ask, press, slack_sink) -> None:
    """No API connection: the update falls back to response_url, but only on allowed hosts."""
    question = ask()
    response = press(question, response_url="https://attacker.example/collect")
    assert response.json()["outcome"] == "decided"
    assert [m for m in slack_sink.messages() if m.get("kind") in ("update", "response")] == []


def test_signing_secret_never_in_logs_or_answers(ask, press, clock, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    question = ask()
    texts = [
        press(question, secret="wrong").text,
        press(question, user=MALLORY).text,
        press(question, user=ALICE).text,
        press(question, user=CAROL).text,
    ]
    clock.offset = 1000
    texts.append(press(question).text)

    assert all(SECRET not in text for text in texts)
    assert SECRET not in caplog.text
    assert "signature does not match" in caplog.text  # the refusals are logged, by reason only


def test_settings_object_does_not_print_the_secret() -> None:
    from toilless.slack_actions.settings import SigningSecret

    secret = SigningSecret(SECRET)
    assert SECRET not in repr(secret)
    assert SECRET not in f"{secret} {[secret]}"


def test_no_signing_secret_configured_means_503(ask, respondents, set_connection, monkeypatch) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from toilless.slack_actions.router import create_router

    monkeypatch.delenv("AIRFLOW_CONN_SLACK_SIGNING_SECRET", raising=False)
    app = FastAPI()
    app.include_router(create_router())
    with TestClient(app) as client:
        response = client.post("/slack/actions", content=b"payload=%7B%7D")
    assert response.status_code == 503


def test_the_intake_app_serves_the_endpoint() -> None:
    from toilless.intake.app import create_app

    assert "/slack/actions" in {getattr(route, "path", "") for route in create_app().routes}
