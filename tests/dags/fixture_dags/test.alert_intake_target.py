"""Test-only target of the alert intake: takes the alert conf the intake builds and records it.

Params like an alert-triggered SOP: `alert`, `dry_run`, plus `instance_ids` (from the alert's `instance` label) and
`count` (an integer, so a route that maps a non-number is refused by Params validation).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, task

from toilless.common.dag_defaults import default_args
from toilless.common.params import alert_param, dry_run_param


@dag(
    dag_id="test.alert_intake_target",
    schedule=None,
    catchup=False,
    max_active_runs=16,
    tags=["test", "alert-intake"],
    doc_md=__doc__,
    default_args=default_args(owner="sre-platform", retries=0, retry_delay=timedelta(seconds=0)),
    params={
        "alert": alert_param(),
        "dry_run": dry_run_param(),
        "instance_ids": Param(
            ["none"],
            type="array",
            items={"type": "string"},
            minItems=1,
            title="Instances",
            description="Instances the alert is about.",
        ),
        "count": Param(1, type="integer", minimum=1, title="Count", description="A number the route maps."),
    },
)
def alert_intake_target():
    @task
    def record_alert(params: dict | None = None) -> dict:
        params = params or {}
        alert = params.get("alert") or {}
        return {"alertname": alert.get("alertname"), "instance_ids": params.get("instance_ids")}

    record_alert()


alert_intake_target()
