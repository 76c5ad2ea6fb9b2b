"""
# Post-mortem draft (`postmortem_draft`)

Writes the post-mortem people used to write by hand, from the facts Toilless recorded as they happened: the
template (SOPS.md "Alert handling": stakeholders, a timeline of human and system events, impact, resolution, action
plan) filled from the incident's timeline, filed as a GitHub issue under the infrastructure epic and posted to the
incident channel.

## When it runs
- **Automatically, on resolve**: when the alert of a P0/P1 incident resolves, the alert intake starts a run for that
  incident at once (run id `postmortem__<incident>`, `toilless.incidents.autodraft`).
- **Every 10 minutes** (the fallback, e.g. after an API server restart): it drafts each P0/P1 incident resolved in
  the last 72 h that has no draft yet (`postmortem.auto_severities`, `postmortem.lookback_hours` in
  include/config/incidents.yaml).
- **Manual**: with `incident_id` (any severity).

## Never twice
Each issue carries the marker `<!-- toilless-postmortem:<incident> -->`; before filing, the issues with the
`postmortem` label are listed (read-after-write consistent) and an existing draft is reused. The filed URL is also
recorded on the incident (`postmortem_filed`), which takes it off the automatic list.

## Who is told
The incident channel (`incident_channel`). Task failures: the shared failure notifier.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Param, dag

from toilless.common.dag_defaults import default_args, task
from toilless.common.params import dry_run_param
from toilless.sops.postmortem_draft import steps


@dag(
    dag_id="postmortem_draft",
    schedule=timedelta(minutes=10),
    catchup=False,
    max_active_runs=1,  # two runs must not draft the same incident at once
    tags=["incidents"],
    doc_md=__doc__,
    default_args=default_args(owner="sre", retries=2, retry_delay=timedelta(minutes=1)),
    params={
        "dry_run": dry_run_param(),
        "incident_id": Param(
            None,
            type=["null", "string"],
            maxLength=64,
            title="Incident",
            description="Draft this incident (any severity). Empty: every resolved P0/P1 incident without a draft.",
        ),
    },
)
def postmortem_draft():
    @task
    def choose_incidents(params: dict[str, Any] | None = None) -> list[str]:
        return steps.choose_incidents(dict(params or {}))

    @task
    def file_drafts(incident_ids: list[str], params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return steps.file_drafts(incident_ids, bool((params or {}).get("dry_run")))

    file_drafts(choose_incidents())


postmortem_draft()
