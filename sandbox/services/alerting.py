"""The sandbox's alerting path: a real Prometheus and Alertmanager (Debian packages), wired to the alert intake.

Alertmanager delivers to ``<Airflow URL>/toilless/alertmanager`` with ``Authorization: Bearer <intake token>``, as
README's "Alertmanager wiring" says, and to a recorder that appends every notification to
``<sandbox home>/alerting/notifications.jsonl``. Prometheus starts with no rules; ``--web.enable-lifecycle`` lets a
drill (``make drill``) load its scenario's rule and exporter into it and reload (sandbox/drill/runner.py). Triage
(``triage_alert``) measures with this Prometheus and silences noise in this Alertmanager (Connections
``sandbox_prometheus`` / ``sandbox_alertmanager``, see sandbox/services/triage_alert.py).

Without the Debian packages nothing starts and the summary says so (``make run`` still works; drills need them).
"""

from __future__ import annotations

from typing import Any

from sandbox.prometheus import AlertingStack, available
from sandbox.service import SandboxContext, Service
from sandbox.services.alert_intake import PATH

PROMETHEUS_CONN_ID = "sandbox_prometheus"
ALERTMANAGER_CONN_ID = "sandbox_alertmanager"


class AlertingService(Service):
    name = "alerting"
    # Same order as alert_intake, started after it by name: the intake's token must exist first.
    order = 50
    description = "Prometheus + Alertmanager (Debian packages) delivering to the alert intake"

    def __init__(self) -> None:
        self.stack: AlertingStack | None = None

    def start(self, ctx: SandboxContext) -> None:
        if not available():
            return
        intake = ctx.published["alert_intake"]
        work = ctx.home / "alerting"
        self.stack = AlertingStack(
            work,
            webhook_url=f"{ctx.published['airflow_url']}{PATH}",
            token=intake["token"],
            repeat_interval="1h",
            lifecycle=True,
            notifications=work / "notifications.jsonl",
            prometheus_port=ctx.port(5090),
            alertmanager_port=ctx.port(5091),
        ).start()
        ctx.published["alerting"] = {
            "prometheus": self.stack.prometheus_url,
            "alertmanager": self.stack.alertmanager_url,
            "rules_file": str(self.stack.rules_file),
            "targets_file": str(self.stack.targets_file),
            "notifications": str(work / "notifications.jsonl"),
        }

    def stop(self) -> None:
        if self.stack is not None:
            self.stack.stop()

    def connections(self, ctx: SandboxContext) -> dict[str, dict[str, Any]]:
        if self.stack is None:
            return {}
        return {
            PROMETHEUS_CONN_ID: {"conn_type": "http", "host": self.stack.prometheus_url},
            ALERTMANAGER_CONN_ID: {"conn_type": "http", "host": self.stack.alertmanager_url},
        }

    def summary(self, ctx: SandboxContext) -> str:
        if self.stack is None:
            return f"{self.description}: not started (install prometheus and prometheus-alertmanager)"
        return (
            f"{self.description}: Prometheus {self.stack.prometheus_url}, Alertmanager {self.stack.alertmanager_url} "
            "(no rules until a drill loads one: make drill)"
        )
