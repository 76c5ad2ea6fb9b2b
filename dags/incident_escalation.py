"""
# Incident escalation (`incident_escalation`)

Every two minutes: each open incident nobody has acknowledged climbs the on-call ladder one step per escalation
target of its severity (P0 15 min, P1 1 h, P2 4 h, P3 24 h): primary, then secondary, tertiary and the engineering
manager (include/oncall_rotation.yaml, handover Monday 00:00 UTC). Each step is recorded on the incident's timeline
and announced on the incident channel with the acknowledge call. It also writes the events this host's incident
outbox holds (written while the incident database was away).

## Why a sweeper DAG and not Airflow deadline alerts
Deadline alerts hang off a DAG run; an incident is not one: an alert with no runbook, or a runbook that ended long
before anyone acknowledged, has no run to watch, and acknowledgement lives outside Airflow. One short sweep over the
open incidents covers all of them; a step is claimed by compare-and-swap so overlapping sweeps never page twice.
At most two minutes late against a 15-minute target.

## Steps
1. `escalate_incidents`: drain the outbox, escalate what is due, announce each step.

## Who is told
The incident channel (`incident_channel` in include/config/incidents.yaml). Task failures: the shared notifier.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import dag

from toilless.common.dag_defaults import default_args, task
from toilless.sops.incident_escalation import steps


@dag(
    dag_id="incident_escalation",
    schedule=timedelta(minutes=2),
    catchup=False,
    max_active_runs=1,  # one sweep at a time (the claim would hold anyway; this keeps the scheduler quiet)
    tags=["incidents"],
    doc_md=__doc__,
    default_args=default_args(owner="sre", retries=1, retry_delay=timedelta(seconds=30)),
    dagrun_timeout=timedelta(minutes=5),
)
def incident_escalation():
    @task
    def escalate_incidents() -> dict[str, Any]:
        return steps.escalate_incidents()

    escalate_incidents()


incident_escalation()
