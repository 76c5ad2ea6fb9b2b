"""The post-mortem draft: filled from the timeline in order with its actors, filed once in (fake) GitHub under the
epic, posted to the incident channel; a second run (retry) files nothing more."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.incidents.conftest import incident_db  # noqa: F401 - the fixture
from toilless.incidents import events as ev
from toilless.incidents.markdown import md
from toilless.sops.postmortem_draft.template import marker, render

REPO = "example-org/infrastructure"


def _seed(incident_id: str = "feed01", severity: str = "P0") -> datetime:
    from toilless.incidents import record

    opened = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    steps = [
        (
            0,
            ev.ALERT_RECEIVED,
            "alertmanager",
            "OrdersDown firing",
            {
                "alertname": "OrdersDown",
                "severity": severity,
                "service": "orders",
                "environment": "prod",
                "starts_at": "2026-01-01T00:00:00Z",
            },
        ),
        (1, ev.RUNBOOK_STARTED, "toilless", "runbook order_backlog_check started", {"dag_id": "order_backlog_check"}),
        (2, ev.MESSAGE_SENT, "toilless", "told ops", {"channel": "ops"}),
        (4, ev.ACKNOWLEDGED, "alice", "acknowledged via rest", {"via": "rest"}),
        (6, ev.GATE_VERDICT, "toilless", "restart allowed", {"allowed": True}),
        (7, ev.APPROVAL, "bob", "Approve (answered)", {}),
        (8, ev.ACTION, "toilless", "restarted deploy/orders: ok", {"result": "ok"}),
        (20, ev.ALERT_RESOLVED, "alertmanager", "OrdersDown resolved", {}),
    ]
    for minute, kind, actor, summary, data in steps:
        record(
            kind,
            incident_id=incident_id,
            at=opened + timedelta(minutes=minute),
            actor=actor,
            summary=summary,
            data=data,
        )
    return opened


def test_draft_holds_every_event_in_order_with_its_actor(incident_db: Any) -> None:  # noqa: F811
    from toilless.incidents import store

    _seed()
    title, body = render(store.get_incident(incident_db, "feed01"), store.timeline(incident_db, "feed01"), epic_issue=7)
    assert title.startswith("Post-mortem: P0 OrdersDown")
    assert body.startswith(marker("feed01"))
    assert "Part of #7" in body
    rows = [line for line in body.splitlines() if line.startswith("| ") and "UTC" not in line and "Time" not in line]
    kinds = [row.split(" | ")[2] for row in rows]
    assert kinds == [
        "alert\\_received",
        "runbook\\_started",
        "message\\_sent",
        "acknowledged",
        "gate\\_verdict",
        "approval",
        "action",
        "alert\\_resolved",
    ]
    assert "👤 alice" in body
    assert "👤 bob" in body
    assert "**Told:** ops" in body
    assert "**Acted:** alice, bob" in body
    assert "**Time to acknowledge:** 4 min" in body
    assert "**Time to resolve:** 20 min" in body
    assert "restarted deploy/orders: ok" in body.split("## Resolution")[1]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("a|b", "a\\|b", id="table-cell"),
        pytest.param("@team <script>", "\\@team \\<script\\>", id="mention-and-html"),
        pytest.param("line\nbreak", "line break", id="one-line"),
        pytest.param("x" * 500, "x" * 199 + "…", id="bounded"),
    ],
)
def test_outside_text_cannot_break_the_markdown(raw: str, expected: str) -> None:
    assert md(raw) == expected


def test_filed_once_under_the_epic_and_posted(
    incident_db: Any,  # noqa: F811
    fake_github: Any,
    slack_sink: Any,
    set_connection: Callable[[str, dict[str, Any]], None],
) -> None:
    from toilless.incidents import store
    from toilless.sops.postmortem_draft import steps

    set_connection("github_incidents", fake_github.connection())
    _seed()
    assert steps.choose_incidents({}) == ["feed01"]
    [first] = steps.file_drafts(["feed01"], dry_run=False)
    assert first["filed"] is True
    [issue] = fake_github.issues(REPO)
    assert marker("feed01") in issue["body"]
    assert "Part of #1" in issue["body"]
    assert store.get_incident(incident_db, "feed01")["postmortem_url"] == first["url"]
    assert steps.choose_incidents({}) == []  # off the automatic list
    # A retry (or a manual run) for the same incident: the marker is found, nothing filed, nothing posted again.
    [again] = steps.file_drafts(["feed01"], dry_run=False)
    assert again == {"incident_id": "feed01", "url": first["url"], "filed": False}
    assert len(fake_github.issues(REPO)) == 1
    posted = slack_sink.messages("urgent")
    assert len(posted) == 1
    assert "OrdersDown" in posted[0]["text"]


def test_p2_is_not_drafted_automatically_but_can_be_by_hand(incident_db: Any) -> None:  # noqa: F811
    from toilless.sops.postmortem_draft import steps

    _seed("feed02", severity="P2")
    assert steps.choose_incidents({}) == []
    assert steps.choose_incidents({"incident_id": "feed02"}) == ["feed02"]
    with pytest.raises(ev.UnknownIncident):
        steps.choose_incidents({"incident_id": "0000"})


def test_dry_run_files_nothing(incident_db: Any, fake_github: Any) -> None:  # noqa: F811
    from toilless.sops.postmortem_draft import steps

    _seed("feed03")
    [result] = steps.file_drafts(["feed03"], dry_run=True)
    assert result["dry_run"] is True
    assert fake_github.issues(REPO) == []
