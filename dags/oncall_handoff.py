"""
# Weekly on-call handoff (`oncall_handoff`)

Mondays 08:00 UTC (and by hand): the document the outgoing on-call used to write, from the incident record.

- **On-call log** of the past week (Monday 00:00 to Monday 00:00 UTC), one entry per incident in the seed template:
  date/time, alert, troubleshooting, resolution.
- **Recurring alerts** ranked by count, then time spent (the toil candidates), with their runbook or a suggestion
  to write one; mean time to acknowledge.
- **Open incidents**, **silences and maintenance windows ahead** (Alertmanager's silences through the `alertmanager`
  Connection; toilless.yaml's maintenance window).
- **Monitoring self-check**: incident record readable (and its outbox), alert intake self-test has succeeded,
  Alertmanager reachable, Slack channel configured (the post proves it).

The Markdown document is written under `$AIRFLOW_HOME/toilless_handoffs/` (`handoff.output_dir`); a summary goes to
the handoff channel (`handoff_channel`, include/config/incidents.yaml). `dry_run` writes the document, posts nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import dag

from toilless.common.dag_defaults import default_args, task
from toilless.common.params import dry_run_param
from toilless.sops.oncall_handoff import steps


@dag(
    dag_id="oncall_handoff",
    schedule="0 8 * * 1",
    catchup=False,
    max_active_runs=1,  # one document per week; a rerun rewrites it
    tags=["incidents"],
    doc_md=__doc__,
    default_args=default_args(owner="sre", retries=2, retry_delay=timedelta(minutes=2)),
    params={"dry_run": dry_run_param()},
)
def oncall_handoff():
    @task
    def build_handoff(params: dict[str, Any] | None = None, data_interval_end: Any = None) -> dict[str, Any]:
        from datetime import UTC, datetime

        moment = data_interval_end or datetime.now(UTC)
        return steps.build_handoff(moment, dict(params or {}))

    build_handoff()


oncall_handoff()
