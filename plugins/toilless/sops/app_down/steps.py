"""App down: the task bodies of dags/app_down.py, the only module of the SOP that touches Airflow (config and state
through ``toilless.common``, Kubernetes through ``toilless.hooks.kubernetes``, probes through
``toilless.hooks.http_endpoint``, Slack through ``toilless.common.reporting``)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from toilless.common import gate
from toilless.common.config import OFF_ONLY, ParamRule, load_config, tighten
from toilless.common.errors import InvalidInput
from toilless.common.params import alert_from_params
from toilless.incidents import action_result
from toilless.sops.app_down import decide, messages
from toilless.sops.app_down import settings as checks

log = logging.getLogger(__name__)

DAG_ID = "app_down"
PARAM_RULES = (ParamRule("allow_action", "allow_action", OFF_ONLY, "the automatic recovery"),)
ACTION_TASKS = {
    decide.ROLLBACK: "roll_back_deployment",
    decide.RESTART: "restart_deployment",
    decide.SCALE: "scale_deployment",
}
APPROVAL_TASK = "request_rollback_approval"
REPORT_TASK = "report_timeline"
#: Markers on the Deployment (metadata.annotations): the incident acted on, what was done, recent actions.
MARK_INCIDENT = "toilless.io/app-down-incident"
MARK_ACTION = "toilless.io/app-down-action"
MARK_HISTORY = "toilless.io/app-down-history"


def _now() -> datetime:
    return datetime.now(UTC)


def _hook(settings: Mapping[str, Any]) -> Any:
    from toilless.hooks.kubernetes import KubernetesWorkloadHook

    return KubernetesWorkloadHook(kubernetes_conn_id=settings["service"]["kubernetes_conn_id"])


# -- settings ----------------------------------------------------------------------------------------------------
def resolve_settings(params: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Configuration + Variable + Params, checked: the service, its endpoints, roles, recovery policy."""
    config, notes = tighten(load_config(DAG_ID), params, PARAM_RULES, config_name=DAG_ID)
    toilless = load_config("toilless")
    alert = alert_from_params(dict(params))
    name = checks.choose_service(config, params, alert)
    service = checks.service_settings(config["services"][name], name)
    roles = checks.roles((config.get("escalation") or {}).get("roles"), toilless["slack"]["channels"])
    checks.policy_from_settings(config)  # refuses a malformed recovery section now, before anything is read
    now = _now()
    started = alert.get("startsAt") if alert else None
    started_at = decide.parse_time(started) if isinstance(started, str) else None
    if started_at is not None and started_at > now:
        started_at = now  # a clock-skewed or hostile startsAt must not widen the rollout window into the future
    run_id = str(context.get("run_id") or "manual")
    incident = f"{alert.get('fingerprint') or alert.get('alertname', 'alert')}@{started}" if alert else f"run:{run_id}"
    return {
        **config,
        "service": service,
        "roles": roles,
        "environment": str(toilless.get("environment", "sandbox")),
        "dry_run": bool(params.get("dry_run")),
        "notes": notes,
        "incident_key": incident[:200],
        "run_id": run_id,
        "outage_started_at": (started_at or now).isoformat(),
        "alert_summary": messages.alert_summary(alert),
    }


# -- 1. verify ---------------------------------------------------------------------------------------------------
def probe_endpoints(settings: Mapping[str, Any], *, attempts: int, interval: float) -> list[dict[str, Any]]:
    from toilless.hooks.http_endpoint import probe

    timeout = float(settings["probe"]["timeout_seconds"])
    probes = []
    for attempt in range(attempts):
        if attempt:
            time.sleep(interval)
        for kind, urls in settings["service"]["endpoints"].items():
            probes.extend(probe(url, timeout=timeout, kind=kind) for url in urls)
    return probes


def verify_unreachable(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Probe the endpoints several times; read the Deployment's readiness and pods. ``down``: a public endpoint
    never answered."""
    service = settings["service"]
    hook = _hook(settings)
    # The Deployment first: an unknown one or an unreadable namespace is a clear error before anything else.
    rollout = hook.rollout_status(service["namespace"], service["deployment"])
    pods = hook.deployment_pods(service["namespace"], service["deployment"])
    probe = settings["probe"]
    probes = probe_endpoints(settings, attempts=int(probe["attempts"]), interval=float(probe["interval_seconds"]))
    endpoints = decide.endpoint_verdicts(probes)
    down = decide.is_down(endpoints)
    log.info("%s/%s down: %s (%s)", service["namespace"], service["deployment"], down, endpoints)
    return {
        "down": down,
        "verified_at": _now().isoformat(),
        "endpoints": endpoints,
        "rollout": rollout,
        "pods": pods[:20],
        "pod_count": len(pods),
    }


def _skip_unless_down(verification: Mapping[str, Any]) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    if not verification.get("down"):
        raise AirflowSkipException("the app answers: a false alarm, nothing to escalate or recover")


# -- 2. escalate -------------------------------------------------------------------------------------------------
def escalate_outage(
    settings: Mapping[str, Any], verification: Mapping[str, Any], *, again: bool = False
) -> dict[str, Any]:
    """Tell every configured role, each with the evidence (one message per channel, naming its roles)."""
    from toilless.common.reporting import post_message

    _skip_unless_down(verification)
    sent = []
    for channel, role_names, groups in messages.channels_for_roles(settings["roles"]):
        message = messages.escalation_message(settings, verification, role_names, groups)
        post_message(channel, message["text"], blocks=message["blocks"])
        sent.append({"channel": channel, "roles": role_names})
    return {"escalated_at": _now().isoformat(), "sent": sent}


# -- 3. evidence -------------------------------------------------------------------------------------------------
def gather_evidence(settings: Mapping[str, Any], verification: Mapping[str, Any]) -> dict[str, Any]:
    """Rollout history, pods' error lines (previous containers too), usage vs limits, Service and Ingress."""
    from toilless.common.redaction import mask_secrets

    _skip_unless_down(verification)
    service = settings["service"]
    namespace, name = service["namespace"], service["deployment"]
    hook = _hook(settings)
    deployment = hook.read_deployment(namespace, name)
    template = (deployment.get("spec") or {}).get("template") or {}
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    pods = hook.deployment_pods(namespace, name)
    evidence_settings = settings["evidence"]
    pattern = re.compile(str(evidence_settings.get("error_pattern") or "."))
    logs = []
    for pod in pods[: int(evidence_settings["max_pods"])]:
        for previous in (False, True) if pod["restarts"] else (False,):
            lines = hook.pod_log_tail(
                namespace, pod["name"], tail_lines=int(evidence_settings["log_lines"]), previous=previous
            )
            errors = [mask_secrets(line)[:300] for line in lines if pattern.search(line)]
            logs.append({"pod": pod["name"], "previous": previous, "lines": errors[-10:]})
    notes: list[str] = []
    usage = None
    limit = decide.cpu_millis(_cpu_limit(template))
    try:
        match_labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        usage = decide.usage_pct(hook.pod_metrics(namespace, match_labels), limit)
    except Exception as err:  # metrics-server is optional: no usage is evidence too
        notes.append(f"no pod metrics: {mask_secrets(err)[:160]}")
    objects = {}
    for kind, reader in (("service", hook.read_service), ("ingress", hook.read_ingress)):
        if service.get(kind):
            try:
                objects[kind] = messages.object_summary(kind, reader(namespace, service[kind]))
            except InvalidInput as err:
                notes.append(str(err)[:200])
    return {
        "revisions": hook.deployment_revisions(namespace, name)[-10:],
        "status": hook.rollout_status(namespace, name),
        "pods": pods[:20],
        "restarted_at": annotations.get("kubectl.kubernetes.io/restartedAt"),
        "usage_pct": usage,
        "cpu_limit_millis": limit,
        "logs": logs,
        "objects": objects,
        "notes": notes,
    }


def _cpu_limit(template: Mapping[str, Any]) -> Any:
    containers = (template.get("spec") or {}).get("containers") or [{}]
    return ((containers[0].get("resources") or {}).get("limits") or {}).get("cpu")


# -- 4. decide ---------------------------------------------------------------------------------------------------
def decide_recovery(settings: Mapping[str, Any], evidence: Mapping[str, Any]) -> dict[str, Any]:
    recovery = decide.decide_recovery(
        evidence,
        outage_started_at=datetime.fromisoformat(settings["outage_started_at"]),
        policy=checks.policy_from_settings(settings),
    ).as_dict()
    recovery["needs_approval"] = decide.needs_approval(
        recovery["action"],
        environment=settings["environment"],
        automatic_rollback_in_prod=bool(settings["recovery"].get("automatic_rollback_in_prod")),
        dry_run=bool(settings["dry_run"]),
    )
    recovery["approval_subject"], recovery["approval_body"] = messages.approval_text(settings, recovery)
    recovery["approval_timeout_minutes"] = float(settings["recovery"]["approval_timeout_minutes"])
    log.info("Recovery: %s: %s", recovery["action"], recovery["reason"])
    return recovery


def choose_path(decision: Mapping[str, Any] | None) -> str:
    if not decision or decision["action"] not in ACTION_TASKS:
        return REPORT_TASK
    if decision.get("needs_approval"):
        return APPROVAL_TASK
    return ACTION_TASKS[decision["action"]]


# -- 5. act ------------------------------------------------------------------------------------------------------
def act(settings: Mapping[str, Any], decision: Mapping[str, Any], action: str) -> dict[str, Any]:
    """The one path of every action: re-read the Deployment, the gate at this moment, the marker, then the call.

    The marker (incident, action, recent actions) is written on the Deployment before the call, so a retry after a
    crash or a lost answer sees it and does not act again (the gate's once-per-incident check).
    """
    service = settings["service"]
    namespace, name = service["namespace"], service["deployment"]
    target = f"{namespace}/{name}"
    hook = _hook(settings)
    deployment = hook.read_deployment(namespace, name)
    annotations = (deployment.get("metadata") or {}).get("annotations") or {}
    now = _now()
    result: dict[str, Any] = {"action": action, "target": target, "acted": False, "dry_run": settings["dry_run"]}
    marker_action = str(annotations.get(MARK_ACTION, ""))
    if annotations.get(MARK_INCIDENT) == settings["incident_key"] and marker_action.endswith(f" {settings['run_id']}"):
        # This run's earlier try acted and lost the answer (or crashed after): done, still to be verified.
        return {**result, "acted": True, "action_at": marker_action.split(" ")[1], "reason": "done by an earlier try"}
    recent = gate.decode_history(annotations.get(MARK_HISTORY), now=now)
    policy = gate.sop_gate_policy(load_config("toilless"), settings)
    history = gate.TargetHistory(
        last_action_at=max(recent, default=None),
        recent_actions=recent,
        incident_done=annotations.get(MARK_INCIDENT) == settings["incident_key"],
        incident_note=marker_action,
    )
    verdict = gate.check_action(f"{action} the Deployment", target, now=now, policy=policy, history=history)
    result["gate"] = verdict.as_dict()
    if not verdict.allowed:
        log.info("Not acting on %s: %s", target, verdict.reason)
        return {**result, "reason": verdict.reason}
    current_images = decide_images(deployment)
    if action == decide.ROLLBACK and current_images != list(decision.get("from_images") or []):
        reason = f"the Deployment changed since the decision (now {', '.join(current_images)}): not rolling back"
        return {**result, "reason": reason}
    marker = {
        MARK_INCIDENT: settings["incident_key"],
        MARK_ACTION: f"{action} {now.strftime('%Y-%m-%dT%H:%M:%SZ')} {settings['run_id']}",
        MARK_HISTORY: gate.encode_history([*recent, now], now=now, keep=policy.breaker_window),
    }
    hook.patch_deployment(namespace, name, {"metadata": {"annotations": marker}})
    if action not in (decide.ROLLBACK, decide.RESTART, decide.SCALE):
        raise InvalidInput(f"unknown action {action!r}")
    with action_result(action, target):  # the call and its result on the incident timeline
        if action == decide.ROLLBACK:
            to_revision = int(decision["to_revision"])
            done = hook.rollback_deployment(namespace, name, to_revision=to_revision, annotations=marker)
        elif action == decide.RESTART:
            done = hook.restart_deployment(namespace, name, now=now)
        else:
            done = hook.scale_deployment(namespace, name, replicas=int(decision["replicas"]))
    log.info("%s on %s: %s", action, target, done)
    return {**result, "acted": True, "action_at": now.isoformat(), "reason": verdict.reason, "result": done}


def decide_images(deployment: Mapping[str, Any]) -> list[str]:
    from toilless.common.kubernetes_contracts import images

    return images(((deployment.get("spec") or {}).get("template")) or {})


def action_outcome(context: Mapping[str, Any]) -> dict[str, Any] | None:
    """The result of whichever action task ran (None when none did)."""
    ti = context["ti"]
    for task_id in ACTION_TASKS.values():
        value = ti.xcom_pull(task_ids=task_id)
        if value:
            return value
    return None


# -- 6. verify recovery ------------------------------------------------------------------------------------------
def check_recovery(settings: Mapping[str, Any]) -> dict[str, Any]:
    """One look: the rollout and one probe of every endpoint."""
    service = settings["service"]
    rollout = _hook(settings).rollout_status(service["namespace"], service["deployment"])
    probes = probe_endpoints(settings, attempts=1, interval=0)
    return {
        "rollout_complete": bool(rollout["complete"]),
        "endpoints_ok": all(probe["ok"] for probe in probes),
        "rollout": rollout,
        "failing": [probe["url"] for probe in probes if not probe["ok"]],
    }


def report_timeline(
    context: Mapping[str, Any],
    settings: Mapping[str, Any],
    verification: Mapping[str, Any],
    escalation: Mapping[str, Any] | None,
    decision: Mapping[str, Any] | None,
) -> dict[str, Any]:
    from airflow.sdk.exceptions import AirflowSkipException

    from toilless.common.reporting import send_report

    if not verification:
        raise AirflowSkipException("verify_unreachable failed: its failure notice says why; no timeline to report")
    outcome = action_outcome(context)
    recovery = context["ti"].xcom_pull(task_ids="verify_recovery")
    report = messages.timeline(settings, verification, escalation, decision, outcome, recovery)
    send_report(
        context,
        channel=settings["report_channel"],
        title=report["title"],
        lines=report["lines"],
        status=report["status"],
    )
    return {**report, "outcome": outcome, "recovery": recovery}


def escalate_again(
    context: Mapping[str, Any], settings: Mapping[str, Any], report: Mapping[str, Any]
) -> dict[str, Any]:
    """Not recovered: every role again with everything learned, and a page."""
    from airflow.sdk.exceptions import AirflowSkipException

    from toilless.common.reporting import post_message

    if not report.get("page"):
        raise AirflowSkipException(report.get("page_reason") or "recovered or nothing to page for")
    text = messages.page_text(settings, report)
    channels = {settings["escalation"]["page_channel"]} | {spec["channel"] for spec in settings["roles"].values()}
    for channel in sorted(channels):
        post_message(channel, text)
    return {"paged": sorted(channels), "at": _now().isoformat()}
