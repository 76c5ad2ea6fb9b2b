"""The make-run service of the incident record: a fake GitHub the post-mortem drafts can be filed in."""

from __future__ import annotations

import json
from pathlib import Path

from sandbox.service import SandboxContext
from sandbox.services.incident_record import REPO, IncidentRecordService


def test_service_points_the_github_connection_and_the_settings_at_its_fake_github(tmp_path: Path) -> None:
    service = IncidentRecordService()
    ctx = SandboxContext(home=tmp_path, preferred_ports=False)
    service.start(ctx)
    try:
        connection = service.connections(ctx)["github_incidents"]
        assert connection["host"] == service.server.url
        settings = json.loads(service.variables(ctx)["toilless_incidents"])
        assert settings["postmortem"]["repo"] == REPO
    finally:
        service.stop()
