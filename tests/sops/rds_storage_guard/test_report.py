"""The RDS storage guard's report lines, approval outcomes and table-growth maths (pure parts)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from toilless.sops.rds_storage_guard import forecasting, growth_plan
from toilless.sops.rds_storage_guard.report import approval_outcome, report_fingerprint, report_lines, should_repeat
from toilless.sops.rds_storage_guard.table_growth import table_growth

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def critical_decision(action: str = growth_plan.REQUEST_APPROVAL) -> dict:
    return {
        "instance_id": "orders-db",
        "state": forecasting.CRITICAL,
        "action": action,
        "reason": "95.0% used",
        "blocked_reason": None,
        "allocated_gib": 100,
        "target_gib": 130,
        "storage_type": "gp3",
        "monthly_cost_delta": 3.45,
        "currency": "USD",
    }


@pytest.mark.parametrize(
    ("approval", "expected"),
    [
        pytest.param(
            {"chosen_options": ["Approve"], "responded_by_user": {"id": "admin", "name": "admin"}},
            ("approved", "approved by admin"),
            id="approved",
        ),
        pytest.param(
            {"chosen_options": ["Reject"], "responded_by_user": {"id": "u1", "name": "Ana"}},
            ("rejected", "rejected by Ana: not grown, nothing changed"),
            id="rejected",
        ),
        pytest.param(
            {"chosen_options": ["Reject"], "responded_by_user": None},
            ("timed_out", "no answer within 60 minutes: not grown, nothing changed"),
            id="timed-out-defaults-to-reject",
        ),
        pytest.param(None, ("not_asked", "approval was not answered (the request did not complete)"), id="missing"),
    ],
)
def test_approval_outcome(approval, expected) -> None:
    assert approval_outcome(approval, 60) == expected


def test_report_lines_after_approved_growth() -> None:
    plan = {"decisions": [critical_decision()], "approval_timeout_minutes": 60}
    lines = report_lines(
        plan,
        approval={"chosen_options": ["Approve"], "responded_by_user": {"name": "Ana"}},
        expansions=[{"instance_id": "orders-db", "outcome": "modified", "from_gib": 100, "target_gib": 130}],
        verification=[{"instance_id": "orders-db", "status": "available", "allocated_gib": 130}],
        tables={"orders-db": {"conn_id": "rds_orders-db", "configured": False}},
    )
    text = "\n".join(lines)
    assert "`orders-db` CRITICAL (100 GiB gp3): approval requested to grow to 130 GiB" in text
    assert "approved by Ana" in text
    assert "grown 100 -> 130 GiB (ApplyImmediately); verified: status available, allocated 130 GiB" in text
    assert "+3.45 USD/month, permanent" in text
    assert "no database Connection rds_orders-db" in text


def test_table_hint_sizes_are_readable() -> None:
    plan = {"decisions": [critical_decision(growth_plan.NONE)]}
    hint = {
        "conn_id": "rds_orders-db",
        "configured": True,
        "tables": [
            {"table": "public.events", "bytes": 3 * forecasting.GIB, "growth_bytes_per_day": 0.5 * forecasting.GIB},
            {"table": "public.users", "bytes": 5 * 1024**2, "growth_bytes_per_day": None},
        ],
    }
    text = "\n".join(report_lines(plan, approval=None, expansions=None, verification=None, tables={"orders-db": hint}))
    assert "largest tables: public.events 3.00 GiB, +512.0 MiB/day; public.users 5.0 MiB" in text


def test_report_says_when_approved_growth_did_not_happen() -> None:
    plan = {"decisions": [critical_decision()], "approval_timeout_minutes": 60}
    lines = report_lines(
        plan, approval={"chosen_options": ["Approve"], "responded_by_user": "ana"}, expansions=None,
        verification=None, tables=None,
    )  # fmt: skip
    assert any("not grown: the growth step did not complete" in line for line in lines)


def test_report_lines_dry_run() -> None:
    plan = {"decisions": [critical_decision(growth_plan.GROW_NOW)], "dry_run": True}
    text = "\n".join(report_lines(plan, approval=None, expansions=None, verification=None, tables=None))
    assert "dry run: would grow to 130 GiB; nothing changed" in text
    assert "approval" not in text


def test_table_growth_per_day() -> None:
    day = 86400.0
    previous = {"taken_at": 1000.0, "tables": {"events": 10 * forecasting.GIB, "users": 2 * forecasting.GIB}}
    rows = table_growth(
        previous, {"events": 12 * forecasting.GIB, "users": 2 * forecasting.GIB, "new": 1}, 1000.0 + 2 * day
    )
    assert [row["table"] for row in rows] == ["events", "users", "new"]
    assert rows[0]["growth_bytes_per_day"] == pytest.approx(forecasting.GIB)
    assert rows[1]["growth_bytes_per_day"] == 0
    assert rows[2]["growth_bytes_per_day"] is None


def test_table_growth_without_history() -> None:
    rows = table_growth(None, {"events": 5}, 1000.0)
    assert rows == [{"table": "events", "bytes": 5, "growth_bytes_per_day": None}]


@pytest.mark.parametrize(
    ("previous", "fingerprint", "age_hours", "expected"),
    [
        pytest.param(None, "a:warning:none:", 0, True, id="first-report"),
        pytest.param({"fingerprint": "a:warning:none:"}, "a:critical:blocked:cap_reached", 1, True, id="changed"),
        pytest.param({"fingerprint": "a:warning:none:"}, "a:warning:none:", 1, False, id="same-recently"),
        pytest.param({"fingerprint": "a:warning:none:"}, "a:warning:none:", 25, True, id="same-but-old"),
    ],
)
def test_should_repeat(previous, fingerprint, age_hours, expected) -> None:
    now = 100_000.0
    if previous is not None:
        previous = {**previous, "posted_at": now - age_hours * 3600}
    assert should_repeat(previous, fingerprint, now, 24)[0] is expected


def test_report_fingerprint_ignores_order_and_reasons() -> None:
    first = {"instance_id": "a", "state": "warning", "action": "none", "reason": "81.0% used"}
    second = {"instance_id": "b", "state": "critical", "action": "blocked", "blocked_reason": "cap_reached"}
    assert report_fingerprint([first, second]) == report_fingerprint([second, {**first, "reason": "81.3% used"}])


def test_answer_summary_is_json_ready() -> None:
    import json

    from toilless.operators.approval import answer_summary

    event = {
        "chosen_options": ["Reject"],
        "params_input": {},
        "responded_at": datetime(2026, 11, 20, 12, 5, tzinfo=UTC),
        "responded_by_user": None,
    }
    summary = answer_summary(event)
    assert json.loads(json.dumps(summary)) == {
        "chosen_options": ["Reject"],
        "params_input": {},
        "responded_by_user": None,
        "responded_at": "2026-11-20T12:05:00+00:00",
    }
    assert approval_outcome(summary, 60)[0] == "timed_out"


def test_report_says_why_the_gate_held_a_growth_and_from_when() -> None:
    plan = {
        "decisions": [critical_decision(growth_plan.GROW_NOW)],
        "dry_run": False,
        "policy": {"param_notes": ["Param cap_gib = 500 (configured 2000)"]},
    }
    refused = {
        "instance_id": "orders-db",
        "from_gib": 100,
        "target_gib": 130,
        "outcome": "gate_refused",
        "modified": False,
        "gate": {
            "reason": "inside the maintenance window (Sunday 02:00-04:00 UTC)",
            "allowed_from": "2026-11-22T04:00:00+00:00",
        },
    }
    text = "\n".join(report_lines(plan, approval=None, expansions=[refused], verification=None, tables=None))
    assert "not grown at the moment of acting: inside the maintenance window" in text
    assert "(allowed from 2026-11-22T04:00:00+00:00)" in text
    assert "grown 100 -> 130" not in text
    assert "Policy tightened for this run: Param cap_gib = 500 (configured 2000)" in text
