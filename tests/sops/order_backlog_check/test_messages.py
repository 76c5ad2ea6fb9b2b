"""What Slack is told: Ops, the developers, on-call and the record."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sops.order_backlog_check.scenarios import STUCK_VERDICT, diagnose, resolved_settings
from toilless.sops.order_backlog_check.capacity import Capacity, assess_capacity
from toilless.sops.order_backlog_check.messages import developers_message, ops_message, outcome_report


# -- messages --------------------------------------------------------------------------------------------------
def test_ops_message_has_the_numbers_and_the_suggestion(tmp_path: Path) -> None:
    settings = resolved_settings({}, tmp_path)
    verdict, _ = diagnose("overloaded", 5000, 90)
    capacity = assess_capacity(Capacity(), 5000, None)
    diagnosis = {"verdict": verdict.as_dict(), "capacity": capacity.as_dict()}
    message = ops_message(diagnosis, {"outstanding": 5000, "oldest_age_minutes": 90, "overdue": 0}, settings)
    assert "5000" in message["text"]
    assert "1920" in message["text"]
    assert f"every *{capacity.suggested_interval_minutes} min*" in message["text"]


def test_developers_message_has_order_error_and_excerpt(tmp_path: Path) -> None:
    settings = resolved_settings({}, tmp_path)
    verdict, summary = diagnose("stuck", 40)
    diagnosis = {"verdict": verdict.as_dict(), "capacity": {}}
    message = developers_message(diagnosis, {"outstanding": 40, "oldest_age_minutes": 30}, summary.as_dict(), settings)
    assert "order 11" in message["text"]
    assert "Error #12" in message["text"]
    assert "ERROR Error Processing Order. Error #12" in message["blocks"][2]["text"]["text"]


@pytest.mark.parametrize(
    ("restart", "verification", "escalate"),
    [
        pytest.param({"restarted": True, "restarted_at": "t"}, {"status": "recovered", "detail": "ok"}, False, id="ok"),
        pytest.param(
            {"restarted": True, "restarted_at": "t"}, {"status": "timeout", "detail": "no"}, True, id="timeout"
        ),
        pytest.param({"restarted": False, "already_done": True, "reason": "r"}, None, True, id="already-restarted"),
        pytest.param(
            {"restarted": False, "allowed_from": "2026-11-23T08:00:00+00:00", "reason": "r"}, None, False, id="later"
        ),
    ],
)
def test_outcome_escalation(
    restart: dict[str, object], verification: dict[str, object] | None, escalate: bool, tmp_path: Path
) -> None:
    settings = resolved_settings({}, tmp_path)
    diagnosis = {"verdict": STUCK_VERDICT.as_dict(), "capacity": {}}
    outcome = outcome_report(diagnosis, {"outstanding": 40}, restart, verification, settings)
    assert outcome["escalate"] is escalate
    assert outcome["worth_reporting"]


def test_dry_run_messages_say_so(tmp_path: Path) -> None:
    settings = resolved_settings({"dry_run": True}, tmp_path)
    verdict, summary = diagnose("stuck", 40)
    message = developers_message(
        {"verdict": verdict.as_dict(), "capacity": {}},
        {"outstanding": 40, "oldest_age_minutes": 30},
        summary.as_dict(),
        settings,
    )
    assert message["text"].startswith("[dry run] Order processor stuck on order 11")
