"""The weekly handoff: a seeded week gives the hand-checked document; the week boundaries; the summary message.

tests/sops/oncall_handoff/data/expected_handoff.md was checked by hand against seed.py: 6 incidents in the week
(CertExpiry from the week before resolved inside it; OldAlert over before and NextWeek opened after are left out);
times to acknowledge 4, 10, 10, 30 min (median 10); times to resolve 20, 40, 60, 360, 2880 min (median 60);
DiskFull 3 times, 360 + 60 + 40 = 460 min = 7.7 h, mean ack (30 + 10) / 2 = 20 min, no runbook -> write a SOP;
ReplicaLag still open, counted to the end of the week (2 h).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.incidents.conftest import incident_db  # noqa: F401 - the fixture
from tests.sops.oncall_handoff.seed import WEEK_END, WEEK_START, seeded_week
from toilless.sops.oncall_handoff.handoff import build
from toilless.sops.oncall_handoff.steps import maintenance_ahead, summary_message, week_before

EXPECTED = Path(__file__).parent / "data" / "expected_handoff.md"


def test_seeded_week_matches_the_hand_checked_document(incident_db: Any) -> None:  # noqa: F811
    from toilless.incidents import store

    store.write_events(incident_db, seeded_week())
    incidents = store.incidents_between(incident_db, WEEK_START.timestamp(), WEEK_END.timestamp())
    handoff = build(
        incidents,
        store.timelines(incident_db, [item["incident_id"] for item in incidents]),
        week_start=WEEK_START,
        week_end=WEEK_END,
        open_incidents=[item for item in incidents if item["resolved_at"] is None],
        ahead=["maintenance window Sun 2026-12-06 02:00-04:00 UTC"],
        selfcheck=[
            ("alert intake self-test", True, "3 successful run(s) on record"),
            ("Alertmanager reachable", False, "ConnectionError from http://alertmanager:9093"),
        ],
    )
    assert handoff.markdown == EXPECTED.read_text(encoding="utf-8")
    assert handoff.summary()["top_recurring"][0] == ("DiskFull", 3)


@pytest.mark.parametrize(
    ("moment", "start"),
    [
        pytest.param(datetime(2026, 11, 30, 8, 0, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC), id="monday-0800"),
        pytest.param(
            datetime(2026, 11, 30, 0, 0, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC), id="handover-instant"
        ),
        pytest.param(datetime(2026, 12, 6, 23, 59, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC), id="sunday-night"),
    ],
)
def test_the_handoff_covers_the_last_complete_week(moment: datetime, start: datetime) -> None:
    assert week_before(moment) == (start, start + timedelta(days=7))


def test_maintenance_window_ahead_is_listed() -> None:
    window = {"days": ["sunday"], "start": "02:00", "end": "04:00", "timezone": "UTC"}
    ahead = maintenance_ahead({"maintenance_window": window}, datetime(2026, 11, 30, tzinfo=UTC))
    assert ahead == ["maintenance window Sun 2026-12-06 02:00-04:00 UTC (Sunday 02:00-04:00 UTC)"]


def test_summary_escapes_alert_names() -> None:
    summary = {
        "week_start": "2026-11-23T00:00:00+00:00",
        "incidents": 2,
        "by_severity": {"P0": 1, "P1": 0, "P2": 1, "P3": 0},
        "open": 0,
        "top_recurring": [("<!channel>", 2)],
        "selfcheck_failed": [],
        "path": "/tmp/x.md",
    }
    text = summary_message(summary)["text"]
    assert "<!channel>" not in text
    assert "2 incident(s)" in text


def test_a_storm_week_still_fits_one_document() -> None:
    base = WEEK_START.timestamp()
    incidents = [
        {
            "incident_id": f"{i:04x}",
            "alertname": f"A{i % 7}",
            "severity": "P2",
            "opened_at": base + i,
            "resolved_at": base + i + 60,
            "acknowledged_at": None,
        }
        for i in range(1000)
    ]
    handoff = build(incidents, {}, week_start=WEEK_START, week_end=WEEK_END)
    assert "and 700 more incident(s)" in handoff.markdown
    assert handoff.markdown.count("### ") == 300


def test_chart_counts_and_medians_from_the_seeded_week(incident_db: Any, tmp_path: Path) -> None:  # noqa: F811
    from toilless.incidents import store
    from toilless.sops.oncall_handoff.chart import medians, per_day, render_chart

    store.write_events(incident_db, seeded_week())
    incidents = store.incidents_between(incident_db, WEEK_START.timestamp(), WEEK_END.timestamp())
    counts = per_day(incidents, WEEK_START)
    assert counts["P2"] == [0, 1, 1, 1, 0, 0, 0]
    assert counts["P0"] == [1, 0, 0, 0, 0, 0, 0]
    assert counts["P3"] == [0] * 7  # CertExpiry opened the week before
    assert medians(incidents, "acknowledged_at")["P2"] == 20.0  # 30 and 10 min
    png = render_chart(incidents, WEEK_START, tmp_path / "week.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_build_handoff_step_writes_the_document_and_posts_the_summary(
    incident_db: Any,  # noqa: F811
    tmp_path: Path,
    slack_sink: Any,
    set_variable: Any,
) -> None:
    from toilless.incidents import store
    from toilless.sops.oncall_handoff.steps import build_handoff

    set_variable("toilless_incidents", {"handoff": {"output_dir": str(tmp_path)}})
    store.write_events(incident_db, seeded_week())
    summary = build_handoff(WEEK_END + timedelta(hours=8), {})
    assert summary["incidents"] == 6
    assert Path(summary["path"]).read_text(encoding="utf-8").startswith("# On-call handoff: week of 2026-11-23")
    assert "Alertmanager reachable" in summary["selfcheck_failed"]  # no Connection: said, not hidden
    [message] = slack_sink.messages("ops")
    assert "6 incident(s)" in message["text"]
