"""
# DNS failover (`dns_failover`)

SOP *DNS failover* (SOPS.md): a secondary DNS server was added because the primary goes down often. When the "DNS
server not answering" alert fires, find the active server and check both with real DNS queries. Not reachable: fail
over at once. Reachable but failing: read its logs and give it five minutes to come back, then fail over. Failover:
shut the active server down (if that fails, make sure its DNS process is down), then fail over to the standby, with
force if the shutdown did not succeed. Either way networking is asked to bring the old server back as the standby.
**Never** fail over to a standby that does not answer correctly itself: then on-call is paged and nothing changes.

## When it runs
- **Alert**: `DNSServerNotAnswering` (route `dns-server-not-answering` in `include/alert_routes.yaml`).
- **Manual**: with the Params below. Params may only **tighten** the configured policy (a longer wait,
  `allow_failover` off); a Param that would loosen it fails the run at once. No schedule: the alert starts it.

## Steps
1. `resolve_settings`: `include/config/dns_failover.yaml` + Variable `toilless_dns_failover` + Params, every server
   address, DNS name and the provider command checked (`toilless.sops.dns_failover.validation`): bad input fails the
   run here, before anything is read or changed.
2. `find_active_server`: through the configured provider: `command` (`dnsTool -q active_server`) or `route53` (the
   server the PRIMARY record of the failover record set points at).
3. `probe_dns_servers`: every configured name over UDP and TCP, `probe.tries` times each, against both servers
   (dnspython); answers compared with the expected records (`toilless.sops.dns_failover.health`): *answering*,
   *failing* (reachable: SERVFAIL, wrong data, too slow, hung) or *unreachable*. The active server's recent log lines
   (a file's bounded tail under `log.allowed_roots`, or `log_argv`).
4. `decide_failover` (pure, `toilless.sops.dns_failover.decide`): answering: nothing; unreachable: fail over now;
   failing: wait; the standby not answering: page, no failover.
5. `wait_for_recovery`: deferrable (the triggerer, no worker slot): both servers re-probed every `poll_seconds` up
   to `wait_minutes` (the SOP's 5). Recovered: report, no failover. Still failing: fail over, if the standby still
   answers.
6. `choose_path` / `request_approval`: when `approval.required`, a person approves the failover in Airflow (Required
   Actions); no answer within the timeout = no failover.
7. `shut_down_active`: the standby re-probed at that moment; then the shutdown (`dnsTool -a shutdown -s <server>`)
   through the **action gate** (dry run, once per incident, cool-down, circuit breaker, maintenance window). A
   failed shutdown is followed by a check whether the old server's DNS process is down.
8. `fail_over_to_standby`: `dnsTool -a failover -s <standby>` (`-f` when the shutdown did not succeed), or the
   Route 53 change (ChangeResourceRecordSets, GetChange until INSYNC); the gate again at that moment.
9. `verify_failover`: the provider reports the standby active and it answers every name correctly.
10. `report_failover`: the timeline to networking (asked to restore the standby) and on-call.

## Safety
- Markers (run state `toilless_dns_failover_marker`) record each step as started/done per incident, and each step
  re-reads the provider before acting: a retry after a crash between shutdown and failover neither shuts down nor
  fails over twice.
- `dry_run` and the maintenance window change nothing; the report says what would have been done.
- `max_active_runs=1`: two runs never act on the same pair at once.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Param, dag

from toilless.common.dag_defaults import default_args, task
from toilless.common.params import alert_param, dry_run_param
from toilless.notifiers.slack_approval import SlackApprovalRequestNotifier
from toilless.operators.approval import TimedApprovalOperator
from toilless.sensors.dns import DnsRecoverySensor
from toilless.sops.dns_failover import steps


@dag(
    dag_id="dns_failover",
    schedule=None,
    catchup=False,
    max_active_runs=1,  # two runs must never fail over the same pair at once
    tags=["sop", "dns", "network"],
    doc_md=__doc__,
    default_args=default_args(owner="sre-network", retries=2, retry_delay=timedelta(seconds=30)),
    params={
        "dry_run": dry_run_param(),
        "alert": alert_param(),
        "wait_minutes": Param(
            None,
            type=["null", "number"],
            minimum=0,
            maximum=120,
            title="Wait before failing over (minutes)",
            description="How long a reachable but failing server gets to recover. Empty: configured (5); may only "
            "be longer.",
        ),
        "allow_failover": Param(
            None,
            type=["null", "boolean"],
            title="Allow the failover",
            description="Off: probe, decide and report only. Empty: configured. A run can switch it off, never on.",
        ),
    },
)
def dns_failover():
    @task
    def resolve_settings(params: dict[str, Any] | None = None, run_id: str | None = None) -> dict[str, Any]:
        return steps.resolve_settings(dict(params or {}), run_id)

    @task
    def find_active_server(settings: dict[str, Any]) -> dict[str, Any]:
        return steps.find_active_server(settings)

    @task
    def probe_dns_servers(settings: dict[str, Any], found: dict[str, Any]) -> dict[str, Any]:
        return steps.probe_dns_servers(settings, found)

    @task
    def decide_failover(found: dict[str, Any], probed: dict[str, Any]) -> dict[str, Any]:
        return steps.decide_failover(found, probed)

    @task.branch(trigger_rule="none_failed")
    def choose_path(
        settings: dict[str, Any], found: dict[str, Any], decision: dict[str, Any], wait: dict[str, Any] | None = None
    ) -> str:
        return steps.choose_path(settings, found, decision, wait)

    @task(trigger_rule="none_failed_min_one_success", retries=0)
    def shut_down_active(
        settings: dict[str, Any],
        found: dict[str, Any],
        decision: dict[str, Any],
        wait: dict[str, Any] | None = None,
        **context: Any,
    ) -> dict[str, Any]:
        # retries=0: a shutdown is tried once per incident (the marker says so); a crash is reported, not repeated.
        approval = context["ti"].xcom_pull(task_ids="request_approval")
        return steps.shut_down_active(settings, found, decision, wait, approval)

    @task
    def fail_over_to_standby(
        settings: dict[str, Any], found: dict[str, Any], shutdown: dict[str, Any]
    ) -> dict[str, Any]:
        return steps.fail_over_to_standby(settings, found, shutdown)

    @task
    def verify_failover(settings: dict[str, Any], found: dict[str, Any], moved: dict[str, Any]) -> dict[str, Any]:
        return steps.verify_failover(settings, found, moved)

    @task(trigger_rule="none_failed_min_one_success")
    def report_failover(
        settings: dict[str, Any],
        found: dict[str, Any],
        probed: dict[str, Any],
        decision: dict[str, Any],
        wait: dict[str, Any] | None = None,
        **context: Any,
    ) -> dict[str, Any]:
        ti = context["ti"]
        return steps.report_failover(
            context,
            settings,
            found,
            probed,
            decision,
            wait,
            ti.xcom_pull(task_ids="shut_down_active"),
            ti.xcom_pull(task_ids="fail_over_to_standby"),
            ti.xcom_pull(task_ids="verify_failover"),
        )

    settings = resolve_settings()
    found = find_active_server(settings)
    probed = probe_dns_servers(settings, found)
    decision = decide_failover(found, probed)
    wait = DnsRecoverySensor(task_id="wait_for_recovery", settings=settings, found=found, decision=decision)
    decision >> wait
    path = choose_path(settings, found, decision, wait.output)
    approval = TimedApprovalOperator(
        task_id="request_approval",
        subject="DNS failover: shut down the active server and fail over to the standby?",
        body="{{ ti.xcom_pull(task_ids='decide_failover')['reason'] }} Wait: "
        "{{ (ti.xcom_pull(task_ids='wait_for_recovery') or {}).get('status', 'none') }}.",
        timeout_minutes="{{ ti.xcom_pull(task_ids='resolve_settings')['approval']['timeout_minutes'] }}",
        notifiers=[SlackApprovalRequestNotifier(config_name="dns_failover")],
        retries=0,
    )
    shutdown = shut_down_active(settings, found, decision, wait.output)
    moved = fail_over_to_standby(settings, found, shutdown)
    verified = verify_failover(settings, found, moved)
    report = report_failover(settings, found, probed, decision, wait.output)
    path >> approval >> shutdown
    path >> shutdown
    verified >> report


dns_failover()
