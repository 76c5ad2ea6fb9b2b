"""What the intake decided about one alert: its :class:`Plan` (routed, validated) and its :class:`Outcome`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from toilless.intake import decisions, routing
from toilless.intake.models import Alert


@dataclass
class Plan:
    """One alert, routed and validated, ready to act on."""

    alert: Alert
    external_url: str
    facts: decisions.AlertFacts | None  # None in the HTTP answer's plan (see IntakeService.plan)
    channel: str
    route: routing.Route | None = None
    target: str = ""
    key: str = ""
    run_id: str = ""
    conf: dict[str, Any] = field(default_factory=dict)
    mode: decisions.RunMode | None = None
    #: "paused" or "missing" (stale, import errors, or never known to Airflow): the routed DAG cannot run this
    #: alert; it gets its own ack, the others proceed.
    blocked: str = ""
    blocked_why: str = ""

    @property
    def dag_id(self) -> str:
        return self.route.dag_id if self.route else ""


@dataclass
class Outcome:
    alertname: str
    fingerprint: str
    # started | duplicate | skipped | queued | notify_only | no_runbook | resolved | ignored | paused | missing
    status: str
    dag_id: str = ""
    run_id: str = ""
    target: str = ""
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if value != "" or key == "status"}
