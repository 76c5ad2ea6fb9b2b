"""A seeded on-call week (Monday 2026-11-23 to Monday 2026-11-30 UTC), written through the recorder as the intake,
the gate and people would write it. The dates are the test's input, not today's: the builder has no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from toilless.incidents import events as ev

WEEK_START = datetime(2026, 11, 23, tzinfo=UTC)
WEEK_END = WEEK_START + timedelta(days=7)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """``day`` 0 = Monday of the seeded week (negative: the week before)."""
    return WEEK_START + timedelta(days=day, hours=hour, minutes=minute)


def _opened(
    incident_id: str, when: datetime, alertname: str, severity: str, service: str, dag_id: str = ""
) -> list[Any]:
    data = {"alertname": alertname, "severity": severity, "service": service, "environment": "prod", "dag_id": dag_id}
    return [
        ev.make_event(
            incident_id, ev.ALERT_RECEIVED, at=when, actor="alertmanager", summary=f"{alertname} firing", data=data
        )
    ]


def seeded_week() -> list[Any]:
    events: list[Any] = []
    add = events.extend
    # 1. P0 OrdersDown: acknowledged in 4 min, restarted by the runbook, resolved after 20 min.
    add(_opened("a001", at(0, 10), "OrdersDown", "P0", "orders", "order_backlog_check"))
    add(
        [
            ev.make_event("a001", ev.ACKNOWLEDGED, at=at(0, 10, 4), actor="alice", data={"via": "rest"}),
            ev.make_event("a001", ev.GATE_VERDICT, at=at(0, 10, 9), summary="restart allowed", data={"allowed": True}),
            ev.make_event("a001", ev.ACTION, at=at(0, 10, 10), summary="restarted deploy/orders: ok"),
            ev.make_event("a001", ev.MESSAGE_SENT, at=at(0, 10, 11), summary="report", data={"channel": "ops"}),
            ev.make_event("a001", ev.ALERT_RESOLVED, at=at(0, 10, 20), actor="alertmanager"),
        ]
    )
    # 2-4. DiskFull three nights running: once never acknowledged (escalated), twice acknowledged.
    add(_opened("b001", at(1, 3), "DiskFull", "P2", "logs"))
    add(
        [
            ev.make_event(
                "b001", ev.ESCALATED, at=at(1, 7), summary="escalated to secondary bob", data={"level": 1, "to": "bob"}
            ),
            ev.make_event("b001", ev.ALERT_RESOLVED, at=at(1, 9), actor="alertmanager"),
        ]
    )
    add(_opened("b002", at(2, 3), "DiskFull", "P2", "logs"))
    add(
        [
            ev.make_event("b002", ev.ACKNOWLEDGED, at=at(2, 3, 30), actor="bob", data={"via": "slack"}),
            ev.make_event("b002", ev.ALERT_RESOLVED, at=at(2, 4), actor="alertmanager"),
        ]
    )
    add(_opened("b003", at(3, 3), "DiskFull", "P2", "logs"))
    add(
        [
            ev.make_event("b003", ev.ACKNOWLEDGED, at=at(3, 3, 10), actor="carol", data={"via": "rest"}),
            ev.make_event("b003", ev.ALERT_RESOLVED, at=at(3, 3, 40), actor="alertmanager"),
        ]
    )
    # 5. P1 ReplicaLag late on Sunday: acknowledged, still open at the handoff.
    add(_opened("c001", at(6, 22), "ReplicaLag", "P1", "orders-db", "postgres_replica_lag"))
    add([ev.make_event("c001", ev.ACKNOWLEDGED, at=at(6, 22, 10), actor="alice", data={"via": "rest"})])
    # 6. Opened the week before, resolved inside this one: in the log.
    add(_opened("d001", at(-2, 12), "CertExpiry", "P3", "edge"))
    add([ev.make_event("d001", ev.ALERT_RESOLVED, at=at(0, 12), actor="alertmanager")])
    # 7. Over before the week began: not in the log.
    add(_opened("e001", at(-3, 1), "OldAlert", "P3", "legacy"))
    add([ev.make_event("e001", ev.ALERT_RESOLVED, at=at(-3, 2), actor="alertmanager")])
    # 8. Opened after the week: not in the log.
    add(_opened("f001", at(7, 1), "NextWeek", "P2", "later"))
    return events
