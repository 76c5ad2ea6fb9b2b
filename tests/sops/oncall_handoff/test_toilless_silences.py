"""The weekly handoff lists the silences Toilless created (alert triage's list: noise and Slack Silence presses)
with who, why and until when, and names how to end an active one early; Alertmanager's listing does not repeat
them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.incidents.conftest import incident_db  # noqa: F401 - the fixture


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry(start: datetime, minutes: int, **extra: Any) -> dict[str, Any]:
    return {
        "alertname": "Service5xx",
        "matchers": {"alertname": "Service5xx", "service": "checkout"},
        "startsAt": iso(start),
        "endsAt": iso(start + timedelta(minutes=minutes)),
        "createdBy": "alice (Slack, via toilless)",
        "comment": "Silenced from Slack by alice for 4h (incident abc) [toilless-incident:abc:4h]",
        "run_id": "slack:abc",
        **extra,
    }


def test_silences_toilless_created_are_listed_with_who_why_until_and_the_expiry_path(set_variable: Any) -> None:
    from toilless.sops.oncall_handoff.steps import toilless_silences

    now = datetime.now(UTC)
    active, ended = str(uuid.uuid4()), str(uuid.uuid4())
    set_variable(
        "toilless_triage_alert_silences",
        {
            active: entry(now - timedelta(hours=1), 240),
            ended: entry(now - timedelta(days=2), 60, createdBy="toilless", comment="Toilless triage: noise"),
        },
    )

    lines, ids = toilless_silences(now)

    assert ids == {active, ended}
    [first, second] = lines
    assert first.startswith(
        f"Toilless silence {active} (active) until {iso(now + timedelta(hours=3))[:16].replace('T', ' ')}"
    )
    assert "by alice (Slack, via toilless)" in first
    assert f"end early: POST /toilless/incidents/silences/{active}/expire" in first
    assert "why: Silenced from Slack by alice for 4h" in first
    assert "service=checkout" in first
    assert f"Toilless silence {ended} (ended)" in second
    assert "end early" not in second


def test_the_handoff_document_carries_them(
    incident_db: Any,  # noqa: F811
    tmp_path: Path,
    slack_sink: Any,
    set_variable: Any,
) -> None:
    from toilless.sops.oncall_handoff.steps import build_handoff

    now = datetime.now(UTC)
    silence_id = str(uuid.uuid4())
    set_variable("toilless_incidents", {"handoff": {"output_dir": str(tmp_path)}})
    set_variable("toilless_triage_alert_silences", {silence_id: entry(now - timedelta(minutes=5), 60)})

    summary = build_handoff(now, {"dry_run": True})

    document = Path(summary["path"]).read_text(encoding="utf-8")
    ahead = document.split("## Silences and maintenance ahead", 1)[1].split("##", 1)[0]
    assert f"Toilless silence {silence_id} (active)" in ahead
    assert f"silences/{silence_id}/expire" in ahead
