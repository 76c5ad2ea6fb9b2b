"""
# Alert intake self-test (`alert_intake_selftest`)

Proves the path that wakes automation instead of a person works end to end: Prometheus rule → Alertmanager →
`POST /toilless/alertmanager` in the Airflow API server → a DAG run → a task running. Changes nothing anywhere.

## What fires it
- **Alert:** `ToillessIntakeSelfTest` (route `intake-selftest` in include/alert_routes.yaml, one target per
  `instance` label). Fire it by hand after wiring Alertmanager (docs/alert_intake.md, "Checking the wiring"):
  `amtool alert add ToillessIntakeSelfTest instance=probe-1 --alertmanager.url=http://alertmanager:9093`.
- **Manual:** *Trigger DAG w/ config* with an `alert` object, or from `scripts/trigger_runbook.py` (REST API path).
  Triggered with its defaults (no alert) it still succeeds and says plainly that only Airflow was checked
  (scheduler, worker, Slack), not the alert path.

## Steps
1. `confirm_alert_received`: reads the alert from the run's conf and computes how long the path took from the
   alert's `startsAt` to this task starting. Without an alert (a manual run with the defaults) it notes that the
   alert path was not exercised; an alert whose `startsAt` is unreadable fails at once, without retries.
2. `report_selftest`: posts the result to the non-urgent channel (unless `dry_run`): alert name, target,
   fingerprint and the measured delay.

## Who is told
The non-urgent channel, once per self-test alert. A failure goes through the shared failure notifier.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Param, dag

from toilless.common.dag_defaults import default_args, task
from toilless.common.params import alert_param, dry_run_param


@task
def confirm_alert_received(params: dict[str, Any] | None = None) -> dict[str, Any]:
    from datetime import UTC, datetime

    from airflow.sdk.exceptions import AirflowFailException

    from toilless.common.params import alert_from_params

    alert = alert_from_params(params or {})
    if alert is None:
        # A manual run with the defaults: Airflow itself works (this task ran); the alert path was not tested.
        return {"manual": True, "alertname": None, "fingerprint": None, "instance": "", "delay_seconds": None}
    try:
        started_at = datetime.fromisoformat(str(alert["startsAt"]).replace("Z", "+00:00"))
        delay = (datetime.now(UTC) - started_at).total_seconds()
    except (KeyError, TypeError, ValueError) as err:
        # The input cannot change between tries: fail once, clearly, instead of retrying and then paging.
        raise AirflowFailException(f"the run's alert has no readable startsAt ({err}); nothing to measure") from err
    return {
        "manual": False,
        "alertname": alert.get("alertname"),
        "fingerprint": alert.get("fingerprint"),
        "instance": (alert.get("labels") or {}).get("instance", ""),
        "delay_seconds": round(delay, 3),
    }


@task
def report_selftest(received: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
    from airflow.sdk import get_current_context

    from toilless.common.reporting import send_report
    from toilless.common.slack import code, mrkdwn

    if received.get("manual"):
        lines = [
            mrkdwn(
                "Manual run without an alert: Airflow scheduled and ran this self-test and Slack works, but the alert "
                "path (Prometheus, Alertmanager, the intake) was NOT exercised. Fire {} to test it.",
                code("ToillessIntakeSelfTest"),
            )
        ]
    else:
        # The alert's labels are outside text: code() keeps them inside their code spans.
        lines = [
            mrkdwn(
                "Alert {} for {} (fingerprint {}) reached Airflow and started this run.",
                code(received["alertname"]),
                code(received["instance"] or "-"),
                code(received["fingerprint"]),
            ),
            f"From the alert's start to the first task: {received['delay_seconds']:.1f} s.",
        ]
    if (params or {}).get("dry_run"):
        return {"posted": False, "lines": lines}
    send_report(get_current_context(), channel="non_urgent", title="Alert intake self-test passed", lines=lines)
    return {"posted": True, "lines": lines}


@dag(
    dag_id="alert_intake_selftest",
    schedule=None,
    catchup=False,
    # Probes are independent and quick; several targets may be probed at once.
    max_active_runs=8,
    tags=["alert-intake", "selftest", "alert-triggered"],
    doc_md=__doc__,
    default_args=default_args(owner="sre-platform", retries=1, retry_delay=timedelta(seconds=30)),
    params={
        "alert": alert_param(),
        "dry_run": dry_run_param(),
        "note": Param(
            "",
            type=["null", "string"],
            maxLength=200,
            title="Note",
            description="Free text for the person running a manual self-test; not used by the steps.",
        ),
    },
)
def alert_intake_selftest() -> None:
    report_selftest(confirm_alert_received())


alert_intake_selftest()
