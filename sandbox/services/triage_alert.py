"""Alert triage (triage_alert) in the sandbox: the alert intake starts it for routes that name a triage rule.

It measures with the sandbox's own Prometheus and silences noise in the sandbox's own Alertmanager
(sandbox/services/alerting.py, Connections ``sandbox_prometheus`` / ``sandbox_alertmanager``): the noise drill
(``make drill SCENARIO=noisy_5xx``) checks the silence there. Without the Debian packages those Connections do not
exist, the evidence cannot be read, and triage reports "real" (evidence that cannot be read is never noise).
"""

from __future__ import annotations

import json

from sandbox.service import SandboxContext, Service
from sandbox.services.alerting import ALERTMANAGER_CONN_ID, PROMETHEUS_CONN_ID

#: The Variable override the sandbox sets. The maintenance window is not respected here, as in the other demos: the
#: only thing triage acts on is the sandbox's own Alertmanager, and a drill must not depend on the day and hour.
OVERRIDE = {
    "prometheus_conn_id": PROMETHEUS_CONN_ID,
    "alertmanager_conn_id": ALERTMANAGER_CONN_ID,
    "respect_maintenance_window": False,
}


class TriageAlertService(Service):
    name = "triage_alert"
    order = 50
    description = "Alert triage (triage_alert): started by the intake for routes with a triage rule"

    def variables(self, ctx: SandboxContext) -> dict[str, str]:
        return {"toilless_triage_alert": json.dumps(OVERRIDE)}

    def summary(self, ctx: SandboxContext) -> str:
        alerting = ctx.published.get("alerting")
        where = (
            f"Prometheus {alerting['prometheus']}, Alertmanager {alerting['alertmanager']}"
            if alerting
            else "no Prometheus/Alertmanager installed"
        )
        return f"{self.description}; measures and silences with the sandbox's {where}"
