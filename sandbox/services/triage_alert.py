"""Alert triage (triage_alert) in the sandbox: the alert intake starts it for routes that name a triage rule.

It needs a Prometheus and an Alertmanager (Connections ``prometheus_default`` / ``alertmanager_default``, type http);
the sandbox starts neither, so here it only keeps silencing outside the maintenance window off the table: a triage
run in ``make run`` measures nothing and reports "real" (evidence that cannot be read is never noise).
"""

from __future__ import annotations

import json

from sandbox.service import SandboxContext, Service

#: The Variable override the sandbox sets.
OVERRIDE = {"respect_maintenance_window": True}


class TriageAlertService(Service):
    name = "triage_alert"
    order = 50
    description = "Alert triage (triage_alert): started by the intake for routes with a triage rule"

    def variables(self, ctx: SandboxContext) -> dict[str, str]:
        return {"toilless_triage_alert": json.dumps(OVERRIDE)}

    def summary(self, ctx: SandboxContext) -> str:
        return f"{self.description}; needs Connections prometheus_default and alertmanager_default"
