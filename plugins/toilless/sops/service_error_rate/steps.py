"""Service error rate: the task bodies of dags/service_error_rate.py, the only module of the SOP that touches Airflow
(hooks, Variables, Slack). The judgement is in ``verdict``; what the numbers and pods are, in ``evidence``.

Markers live on the Deployment itself, so a retry or a second run re-reads them from the target right before acting:
- restart: one patch of the pod template sets ``kubectl.kubernetes.io/restartedAt`` and the incident and recent
  restarts (``toilless.io/service-error-rate-*``): marker and restart are one atomic write;
- scale: the scale subresource is patched to the decided replica count (what ``kubectl scale`` sends), then the
  Deployment's own annotations record the incident and recent scale-ups. A retry that finds the replicas already
  at (or above) the target does not scale again; it only records.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from toilless.common import gate
from toilless.common.config import load_config
from toilless.common.params import alert_from_params
from toilless.common.reporting import send_report
from toilless.incidents import action_result
from toilless.sops.service_error_rate import evidence, messages, verdict
from toilless.sops.service_error_rate.settings import DAG_ID, render_queries, resolve

log = logging.getLogger(__name__)

PREFIX = "toilless.io/service-error-rate"
RESTART_INCIDENT = f"{PREFIX}-restart-incident"
RESTART_HISTORY = f"{PREFIX}-restart-history"
SCALE_INCIDENT = f"{PREFIX}-scale-incident"
SCALE_HISTORY = f"{PREFIX}-scale-history"


def resolve_settings(params: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Configuration (YAML + Variable) + Params; the incident this run handles (the alert, else the run)."""
    settings = resolve(load_config(DAG_ID), params)
    settings["dry_run"] = bool(params.get("dry_run"))
    alert = alert_from_params(dict(params))
    if alert:
        incident = f"alert:{alert.get('fingerprint') or ''}:{alert.get('startsAt') or ''}"
    else:
        incident = f"run:{context.get('run_id') or ''}"
    settings["incident"] = incident[:250]
    return settings


# -- measuring ---------------------------------------------------------------------------------------------------
def _prometheus(settings: Mapping[str, Any]) -> Any:
    from toilless.hooks.prometheus import PrometheusHook

    return PrometheusHook(
        prometheus_conn_id=settings["prometheus"]["conn_id"],
        timeout_seconds=float(settings["prometheus"]["timeout_seconds"]),
    )


def run_queries(settings: Mapping[str, Any], window_seconds: float) -> dict[str, Any]:
    """The configured PromQL over ``window_seconds``, per pod: ``{"metrics": {pod: {...}}, "spread": {...}}``."""
    service = settings["service"]
    rendered = render_queries(settings["queries"], service["namespace"], service["deployment"], window_seconds)
    hook = _prometheus(settings)
    started = time.monotonic()
    answers = {name: hook.query(expr).by_label("pod") for name, expr in rendered.items()}
    metrics = evidence.per_pod_metrics(answers)
    spread = verdict.measure_spread(metrics, verdict.Thresholds.from_settings(settings["thresholds"]))
    return {
        "metrics": metrics,
        "spread": spread.as_dict(),
        "window_seconds": window_seconds,
        "measured_at": datetime.now(UTC).isoformat(),
        "query_seconds": round(time.monotonic() - started, 3),
    }


def measure_errors(settings: Mapping[str, Any]) -> dict[str, Any]:
    """How widespread: 5xx count and ratio, p95 latency and saturation per pod over the configured window."""
    measurement = run_queries(settings, float(settings["prometheus"]["window_seconds"]))
    log.info("%s: %s", settings["service"]["key"], measurement["spread"]["reason"])
    return measurement


def _kubernetes(settings: Mapping[str, Any]) -> Any:
    from toilless.hooks.kubernetes import KubernetesWorkloadHook

    return KubernetesWorkloadHook(kubernetes_conn_id=settings["kubernetes_conn_id"])


def check_pods(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The Deployment's replicas and its pods' health, and which pods it owns (Pod -> ReplicaSet -> Deployment).

    An unknown Deployment or a namespace the Connection cannot read fails here, clearly and not retried
    (``DeploymentNotFound`` / ``NamespaceNotReadable``), before anything is changed.
    """
    import json

    from toilless.common import kubernetes_contracts as contracts

    service = settings["service"]
    namespace, name = service["namespace"], service["deployment"]
    hook = _kubernetes(settings)
    deployment = hook.read_deployment(namespace, name)
    # The hook keeps only ReplicaSets whose controller is this Deployment.
    owned_replica_sets = {str(row["name"]) for row in hook.deployment_revisions(namespace, name)}
    match_labels = dict(((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
    response = hook.kube.core_v1_client.list_namespaced_pod(
        namespace, label_selector=contracts.label_selector(match_labels), _preload_content=False
    )
    items = json.loads(response.data).get("items") or []
    # Selecting is the API server's job; checking again is cheap and guards against one ignoring it.
    pods = [
        pod
        for pod in items[: evidence.MAX_PODS]
        if isinstance(pod, dict)
        and contracts.matches_labels(pod, match_labels)
        and not (pod.get("metadata") or {}).get("deletionTimestamp")
    ]
    unhealthy_restarts = int(settings["thresholds"]["unhealthy_restarts"])
    health = [
        evidence.assess_pod(
            contracts.pod_health(pod), owner=evidence.controller_of(pod), unhealthy_restarts=unhealthy_restarts
        )
        for pod in pods
    ]
    health.sort(key=lambda pod: (not pod["unhealthy"], pod["name"]))
    owned = [pod["name"] for pod in health if evidence.owned_by_deployment(pod, owned_replica_sets)]
    return {
        "replicas": int((deployment.get("spec") or {}).get("replicas") or 0),
        "ready_replicas": int((deployment.get("status") or {}).get("readyReplicas") or 0),
        "pods": health,
        "owned_pods": owned,
    }


def check_dependencies(settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each configured dependency: a TCP connect to its Connection's host and port, then an authenticated ping."""
    from toilless.common.slack import clean

    results = []
    timeout = float(settings["dependency_timeout_seconds"])
    for dependency in settings["service"]["dependencies"]:
        result = {**dependency, "ok": False, "detail": ""}
        try:
            result["detail"] = _ping(dependency, timeout)
            result["ok"] = True
        except Exception as err:  # a failed check is evidence, not a failed task
            if type(err).__name__ in ("NotPostgresConnection", "RedisConnectionError"):
                raise  # a Connection that is missing or of the wrong type is a configuration error
            result["detail"] = clean(f"{type(err).__name__}: {err}", 300)
        log.info("dependency %s (%s): %s", dependency["name"], dependency["kind"], result["detail"])
        results.append(result)
    return results


def _ping(dependency: Mapping[str, Any], timeout: float) -> str:
    if dependency["kind"] == "postgres":
        from toilless.hooks.postgres_admin import PostgresAdminHook

        hook = PostgresAdminHook(
            postgres_conn_id=dependency["conn_id"],
            application_name=f"toilless-{DAG_ID}"[:63],
            statement_timeout_ms=int(timeout * 1000),
        )
        info = hook.connection_info
        _tcp(str(info.host), int(info.port or 5432), timeout)
        try:
            hook.records("SELECT 1 AS ok")
        finally:
            hook.close()
        return f"TCP {info.host}:{info.port or 5432} open, SELECT 1 answered"
    from toilless.hooks.redis import RedisHook

    hook = RedisHook(redis_conn_id=dependency["conn_id"], client_name=f"toilless-{DAG_ID}", socket_timeout=timeout)
    info = hook.connection
    _tcp(str(info.host), int(info.port or 6379), timeout)
    try:
        hook.client.ping()
    finally:
        hook.close()
    return f"TCP {info.host}:{info.port or 6379} open, PING answered"


def _tcp(host: str, port: int, timeout: float) -> None:
    with socket.create_connection((host, port), timeout=timeout):
        pass


# -- deciding ----------------------------------------------------------------------------------------------------
def decide(
    settings: Mapping[str, Any],
    measurement: Mapping[str, Any],
    pods: Mapping[str, Any],
    dependencies: list[dict[str, Any]],
) -> dict[str, Any]:
    service = settings["service"]
    spread = verdict.Spread(
        **{
            **measurement["spread"],
            "affected_pods": tuple(measurement["spread"]["affected_pods"]),
            "saturated_pods": tuple(measurement["spread"]["saturated_pods"]),
        }
    )
    decision = verdict.decide(
        spread,
        target=service["key"],
        pods=pods["pods"],
        owned_pods=pods["owned_pods"],
        dependencies=dependencies,
        replicas=int(pods["replicas"]),
        max_replicas=int(service["max_replicas"]),
        scale_step=int(settings["scale"]["step"]),
        allow_restart=bool(settings["thresholds"]["allow_restart"]),
        allow_scale=bool(settings["thresholds"]["allow_scale"]),
    )
    log.info("Decision for %s: %s (%s)", service["key"], decision.action, decision.reason)
    return decision.as_dict()


# -- acting ------------------------------------------------------------------------------------------------------
def _policy(settings: Mapping[str, Any], *, cooldown: timedelta | None = None) -> gate.GatePolicy:
    return gate.sop_gate_policy(load_config("toilless"), settings, cooldown=cooldown)


def act(settings: Mapping[str, Any], decision: Mapping[str, Any]) -> dict[str, Any]:
    """Restart or scale if decided and the gate allows it now, with the Deployment re-read right before."""
    action = decision["action"]
    if action not in (verdict.RESTART, verdict.SCALE):
        return {"acted": False, "action": action, "reason": "no action decided", "gate": None}
    service = settings["service"]
    now = datetime.now(UTC)
    hook = _kubernetes(settings)
    deployment = hook.read_deployment(service["namespace"], service["deployment"])
    annotations = dict((deployment.get("metadata") or {}).get("annotations") or {})
    template_annotations = dict(
        (((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("annotations") or {}
    )
    incident = settings["incident"]
    if action == verdict.RESTART:
        history_text = template_annotations.get(RESTART_HISTORY)
        policy = _policy(settings)
    else:
        history_text = annotations.get(SCALE_HISTORY)
        policy = _policy(settings, cooldown=timedelta(minutes=float(settings["scale"]["cooldown_minutes"])))
    recent = gate.decode_history(history_text, now=now)
    done_for = [
        kind
        for kind, value in (
            ("restart", template_annotations.get(RESTART_INCIDENT)),
            ("scale", annotations.get(SCALE_INCIDENT)),
        )
        if value == incident
    ]
    history = gate.TargetHistory(
        last_action_at=max(recent, default=None),
        recent_actions=recent,
        incident_done=bool(done_for),
        incident_note=f"{' and '.join(done_for)} recorded on the Deployment for {incident}" if done_for else "",
    )
    verdict_now = gate.check_action(action, service["key"], now=now, policy=policy, history=history)
    result: dict[str, Any] = {
        "acted": False,
        "action": action,
        "reason": verdict_now.reason,
        "gate": verdict_now.as_dict(),
    }
    if verdict_now.check == gate.ONCE_PER_INCIDENT:
        # The same incident was acted on (an earlier try of this run, or an earlier run for the same alert): verify it.
        result.update(already_done=True, acted_at=_recorded_at(history))
        return result
    if not verdict_now.allowed:
        log.info("Not acting on %s: %s", service["key"], verdict_now.reason)
        return result
    new_history = gate.encode_history([*recent, now], now=now, keep=policy.breaker_window)
    namespace, name = service["namespace"], service["deployment"]
    if action == verdict.RESTART:
        # kubectl rollout restart's patch, with the incident and history in the same patch: one atomic write.
        with action_result("rollout restart", service["key"]):
            hook.restart_deployment(
                namespace, name, now=now, annotations={RESTART_INCIDENT: incident, RESTART_HISTORY: new_history}
            )
        result.update(acted=True, acted_at=now.isoformat(), reason=f"rollout restart of {service['key']}")
    else:
        wanted = int(decision["to_replicas"])
        current = int((deployment.get("spec") or {}).get("replicas") or 0)
        if wanted > int(service["max_replicas"]):
            raise AssertionError(f"decided {wanted} replicas above max {service['max_replicas']}")
        if current >= wanted:
            result.update(reason=f"{service['key']} already has {current} replicas (>= {wanted}): not scaled again")
        else:
            with action_result(f"scale to {wanted} replicas", service["key"]):
                hook.scale_deployment(namespace, name, replicas=wanted)
            result.update(reason=f"scaled {service['key']} from {current} to {wanted} replicas")
        # After the scale: a crash before this line leaves the replicas at the target, which the retry sees.
        hook.patch_deployment(
            namespace, name, {"metadata": {"annotations": {SCALE_INCIDENT: incident, SCALE_HISTORY: new_history}}}
        )
        result.update(acted=current < wanted, acted_at=now.isoformat(), already_done=current >= wanted)
    log.info("%s", result["reason"])
    return result


def _recorded_at(history: gate.TargetHistory) -> str | None:
    return history.last_action_at.isoformat() if history.last_action_at else None


# -- verifying ---------------------------------------------------------------------------------------------------
def verify(settings: Mapping[str, Any], outcome: Mapping[str, Any]) -> tuple[bool, dict[str, Any]]:
    """One look through the same PromQL over ``verify.window_seconds`` since the action: (done, result)."""
    if not (outcome.get("acted") or outcome.get("already_done")) or not outcome.get("acted_at"):
        return True, {"verified": False, "recovered": None, "reason": "nothing was changed: nothing to verify"}
    acted_at = datetime.fromisoformat(str(outcome["acted_at"]))
    verify_settings = settings["verify"]
    window = float(verify_settings["window_seconds"])
    now = datetime.now(UTC)
    deadline = acted_at + timedelta(minutes=float(verify_settings["timeout_minutes"]))
    # The window starts settle_seconds after the action (the rollout itself is not judged) and must have passed.
    settle = float(verify_settings["settle_seconds"])
    wait = (acted_at + timedelta(seconds=settle + window) - now).total_seconds()
    if wait > 0:
        # The window must lie after the action. A short rest is waited out here; a long one is a reschedule.
        if wait > float(verify_settings["poll_seconds"]):
            return False, {}
        time.sleep(wait)
        now = datetime.now(UTC)
    measurement = run_queries(settings, window)
    spread = verdict.Spread(
        **{
            **measurement["spread"],
            "affected_pods": tuple(measurement["spread"]["affected_pods"]),
            "saturated_pods": tuple(measurement["spread"]["saturated_pods"]),
        }
    )
    seen = verdict.recovered(spread, verdict.Thresholds.from_settings(settings["thresholds"]))
    result = {"verified": True, "recovered": seen, "reason": spread.reason, "checked_at": now.isoformat()}
    if seen:
        return True, result
    if now >= deadline:
        result["reason"] = f"not recovered {verify_settings['timeout_minutes']:g} min after the action: {spread.reason}"
        result["recovered"] = False
        return True, result
    return False, result


# -- reporting ---------------------------------------------------------------------------------------------------
def report(
    context: Mapping[str, Any],
    settings: Mapping[str, Any],
    measurement: Mapping[str, Any],
    pods: Mapping[str, Any],
    dependencies: list[dict[str, Any]],
    decision: Mapping[str, Any],
    outcome: Mapping[str, Any],
    verification: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The run's report to the report channel; the evidence to the owning team when it must look; escalation when
    failing and not recovered."""
    lines = messages.report_lines(settings, measurement, pods, dependencies, decision, outcome, verification)
    status = messages.status(decision, outcome, verification)
    title = messages.title(settings, decision)
    channels = messages.channels(settings, decision, outcome, verification)
    sent = {}
    for channel in channels:
        sent[channel] = send_report(context, channel=channel, title=title, lines=lines, status=status)
    return {"channels": channels, "status": status}
