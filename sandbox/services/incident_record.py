"""The incident record in `make run` (issue 18): a fake GitHub for post-mortem drafts and failure issues.

The timeline itself needs nothing: it is SQLite at ``$AIRFLOW_HOME/toilless_incidents.db``. This service starts the
in-memory GitHub stand-in (sandbox.fake_github) on loopback, points the ``github_incidents`` Connection at it and the
``toilless_incidents`` Variable at its repository, so ``postmortem_draft`` files its drafts somewhere you can see
(``GET <url>/repos/sandbox/infrastructure/issues`` with any ``Authorization`` header).
"""

from __future__ import annotations

import json
from typing import Any

from sandbox.fake_github import FakeGitHub
from sandbox.service import SandboxContext, ServerService

REPO = "sandbox/infrastructure"


class IncidentRecordService(ServerService):
    name = "incident_record"
    published_as = "incident_github"
    description = "Fake GitHub for post-mortem drafts and failure issues (postmortem_draft, failure triage)"

    def launch(self, ctx: SandboxContext) -> Any:
        return FakeGitHub(port=ctx.port(5066))

    def connections(self, ctx: SandboxContext) -> dict[str, dict[str, Any]]:
        return {"github_incidents": self.server.connection()}

    def variables(self, ctx: SandboxContext) -> dict[str, str]:
        override = {"postmortem": {"repo": REPO, "epic_issue": 0}, "failure_issues": {"repo": REPO, "epic_issue": 0}}
        return {"toilless_incidents": json.dumps(override)}

    def summary(self, ctx: SandboxContext) -> str:
        where = self.server.url if self.server else "?"
        return f"Post-mortem drafts and failure issues go to a fake GitHub at {where} (repo {REPO})"
