"""Triage alert: the task bodies of dags/triage_alert.py, the only module of the SOP that touches Airflow (config and
state are Variables; Prometheus, Kubernetes and Alertmanager through hooks; the verdict goes to Slack).

Over 400 lines because each task body of the SOP is here and steps.py is the only module allowed to import
Airflow; moving the trend and count evidence steps to a module of their own is the next step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from toilless.common import gate
from toilless.common.config import AT_MOST, OFF_ONLY, ParamRule, include_path, load_config, tighten
from toilless.common.errors import InvalidInput
from toilless.common.params import alert_from_params
from toilless.common.redaction import mask_secrets
from toilless.common.reporting import post_message, send_report
from toilless.common.state import read_state, write_state
from toilless.incidents import action_result
from toilless.sops.triage_alert import counts, decide, messages, rules, silences, trend

log = logging.getLogger(__name__)

DAG_ID = "triage_alert"
TITLE = "Alert triage"
#: Durable list of the silences Toilless created (silence id -> what, why, until), for the weekly handoff.
SILENCES_STATE_KEY = "toilless_triage_alert_silences"
PARAM_RULES = (
    ParamRule("allow_silence", "allow_silence", OFF_ONLY, "silencing noise in Alertmanager"),
    ParamRule("max_silence_minutes", "max_silence_minutes", AT_MOST, "the longest silence Toilless may create"),
)
#: Error text from outside (hooks, servers) shown in the verdict: bounded, secrets masked.
MAX_ERROR_CHARS = 300


def resolve_settings(params: Mapping[str, Any]) -> dict[str, Any]:
    """Config + Params (which only tighten it) + the alert and the route's triage conf set by the intake."""
    settings, notes = tighten(load_config(DAG_ID), params, PARAM_RULES, config_name=DAG_ID)
    alert = alert_from_params(dict(params))
    triage = params.get("triage")
    if alert is None or not isinstance(triage, dict) or not triage.get("rule"):
        raise InvalidInput(
            "triage_alert runs for an alert: the intake sets `alert` and `triage` (a route with `triage: <rule>`)"
        )
    rule = _rule(str(triage["rule"]))
    settings["owner_maps"] = owner_maps(settings, rule)
    settings.update(
        dry_run=bool(params.get("dry_run")),
        notes=notes,
        alert=alert,
        triage=dict(triage),
        rule=rule.name,
    )
    return settings


def owner_maps(settings: Mapping[str, Any], rule: rules.TriageRule) -> dict[str, dict[str, str]]:
    """The owner maps the rule's counted causes name, checked now: an owner who cannot be told fails the run before
    anything is measured (a map with a channel Slack does not know, a key that is not a topic)."""
    known_channels = (load_config("toilless").get("slack") or {}).get("channels") or {}
    found: dict[str, dict[str, str]] = {}
    for cause in rule.known_causes:
        if cause.count is None or cause.count.owner_map in found:
            continue
        name = cause.count.owner_map
        try:
            found[name] = counts.check_owner_map(name, settings.get(name), known_channels)
        except counts.OwnerMapError as err:
            raise InvalidInput(f"include/config/triage_alert.yaml {err}") from err
    return found


def _rule(name: str) -> rules.TriageRule:
    try:
        known = rules.load_rules(include_path("triage_rules.yaml"))
    except rules.TriageRuleError as err:
        raise InvalidInput(str(err)) from err
    if name not in known:
        raise InvalidInput(f"triage rule {name!r} is not in include/triage_rules.yaml")
    return known[name]


def _error(err: BaseException) -> str:
    return mask_secrets(f"{type(err).__name__}: {err}")[:MAX_ERROR_CHARS]


def prometheus_query(conn_id: str, expr: str) -> list[float]:
    """The values of an instant query's answer (one per series), through the project's Prometheus hook."""
    from toilless.hooks.prometheus import PrometheusHook

    # One try here: a triage is quick or it is "real"; the task's own retries cover a Prometheus restarting.
    return [sample.value for sample in PrometheusHook(prometheus_conn_id=conn_id, attempts=2).query(expr).samples]


def prometheus_samples(conn_id: str, expr: str) -> list[tuple[dict[str, str], float]]:
    """An instant query's samples with their labels (a count by owner key)."""
    from toilless.hooks.prometheus import PrometheusHook

    result = PrometheusHook(prometheus_conn_id=conn_id, attempts=2).query(expr)
    return [(dict(sample.labels), sample.value) for sample in result.samples]


def prometheus_range(conn_id: str, expr: str, *, minutes: int, step_seconds: int) -> list[tuple[float, float]]:
    """A range query over the last ``minutes``, its series summed per timestamp (a trend is about the total)."""
    from toilless.hooks.prometheus import PrometheusHook

    end = datetime.now(UTC)
    result = PrometheusHook(prometheus_conn_id=conn_id, attempts=2).query_range(
        expr, end - timedelta(minutes=minutes), end, timedelta(seconds=step_seconds)
    )
    return trend.summed([series.points for series in result.series])


def kubernetes_hooks(target: Mapping[str, str]) -> tuple[Any, Any]:
    """The Deployment hook for the pod log and for the Deployment and its pods: one hook, one Kubernetes client."""
    from toilless.hooks.kubernetes import KubernetesDeploymentHook

    hook = KubernetesDeploymentHook(
        kubernetes_conn_id=target["conn_id"],
        namespace=target["namespace"],
        deployment=target["deployment"],
        container=target.get("container", ""),
    )
    return hook, hook


def deployment_pods(workloads: Any, target: Mapping[str, str]) -> list[dict[str, Any]]:
    """The Deployment's pods as the API's JSON (selected by the Deployment's matchLabels)."""
    deployment = workloads.read_deployment(target["namespace"], target["deployment"])
    labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
    found = workloads.kube.core_v1_client.list_namespaced_pod(target["namespace"], label_selector=selector)
    pods = [workloads.kube.api_client.sanitize_for_serialization(pod) for pod in found.items]
    # Selecting is the API server's job; checking again is cheap and guards against one ignoring it.
    return [
        pod
        for pod in pods
        if all(((pod.get("metadata") or {}).get("labels") or {}).get(key) == value for key, value in labels.items())
    ]


def gather_evidence(settings: Mapping[str, Any]) -> dict[str, Any]:
    """How widespread (the rule's PromQL) and each known cause's log and pod checks. A check that fails is evidence
    too ("could not be read"): the decision then treats the alert as real, never as noise."""
    rule = _rule(settings["rule"])
    labels = {str(k): str(v) for k, v in (settings["alert"].get("labels") or {}).items()}
    evidence: dict[str, Any] = {"count": None, "count_error": "", "causes": []}
    try:
        query = rule.query_for(labels)
        evidence["query"] = query
        evidence["count"] = decide.total(prometheus_query(settings["prometheus_conn_id"], query))
    except Exception as err:  # any failure to measure is a reason to wake someone, not to stop
        log.warning("Triage query for %s failed: %s", rule.name, _error(err))
        evidence["count_error"] = _error(err)
    if rule.trend is not None:
        evidence["trend"] = measure_trend(settings["prometheus_conn_id"], rule.trend, labels)
    for cause in rule.known_causes:
        found: dict[str, Any] = {
            "name": cause.name,
            "response": cause.response,
            "owner_channel": cause.owner_channel,
            "min_matches": cause.log.min_matches if cause.log else 1,
            "require_pods_healthy": cause.require_pods_healthy,
            "matches": None,
            "pods_healthy": None,
            "pod_problems": [],
        }
        if cause.count is not None:
            found.update(
                count=None,
                per_key={},
                at_least=cause.count.at_least,
                window_minutes=cause.count.window_minutes,
                owner_map=cause.count.owner_map,
                owner_response=cause.count.owner_response,
            )
        try:
            lines: list[str] = []
            workloads: Any = None
            if cause.log is not None:
                assert rule.kubernetes is not None  # parse_rule refuses a log check without it
                target = rule.kubernetes.resolve(labels)
                logs, workloads = kubernetes_hooks(target)
                lines, source = logs.read_pod_log(max_bytes=cause.log.max_bytes)
                pattern = cause.log.regex
                found["matches"] = sum(1 for line in lines if pattern.search(line))
                found["log_source"] = source
            if cause.count is not None:
                _count_cause(settings, cause, labels, lines, found)
            if found["matches"] >= found["min_matches"] and rule.kubernetes is not None:
                target = rule.kubernetes.resolve(labels)
                if workloads is None:
                    _logs, workloads = kubernetes_hooks(target)
                healthy, problems = decide.pods_health(
                    deployment_pods(workloads, target), max_restarts=cause.max_restarts
                )
                found["pods_healthy"], found["pod_problems"] = healthy, problems[:20]
        except Exception as err:  # a check that cannot be made cannot dismiss an alert
            log.warning("Triage check %s failed: %s", cause.name, _error(err))
            found["log_error"] = _error(err)
        evidence["causes"].append(found)
    return evidence


def measure_trend(conn_id: str, check: rules.TrendCheck, labels: Mapping[str, str]) -> dict[str, Any]:
    """The trend of the rule's series over its range; one that cannot be read is ``unknown`` (treated as real)."""
    outcomes = {"on_rising": check.on_rising, "on_flat": check.on_flat}
    try:
        points = prometheus_range(
            conn_id, check.query_for(labels), minutes=check.range_minutes, step_seconds=check.step_seconds
        )
    except Exception as err:  # a trend that cannot be read cannot make an alert noise
        log.warning("Triage trend query failed: %s", _error(err))
        return {"state": trend.UNKNOWN, "summary": f"unknown ({_error(err)})", **outcomes}
    found = trend.analyse(
        points,
        rising_per_hour_at_least=check.rising_per_hour_at_least,
        steady_for_minutes=check.steady_for_minutes,
        step_seconds=check.step_seconds,
        unit=check.unit,
    )
    return {**found.as_dict(), **outcomes}


def _count_cause(
    settings: Mapping[str, Any],
    cause: rules.KnownCause,
    labels: Mapping[str, str],
    lines: list[str],
    found: dict[str, Any],
) -> None:
    """Count a known cause (its PromQL, or its log lines in the window); a failed count is noted, not raised."""
    check = cause.count
    assert check is not None
    try:
        if check.query:
            samples = prometheus_samples(settings["prometheus_conn_id"], check.query_for(labels))
            total, per_key = counts.count_samples(samples, label=check.owner_by)
            if cause.log is None:
                found["matches"], found["log_source"] = total, ""
        else:
            assert cause.log is not None
            total, per_key = counts.count_lines(
                lines,
                cause.log.regex,
                group=check.owner_by,
                window=timedelta(minutes=check.window_minutes),
                now=datetime.now(UTC),
            )
        found["count"], found["per_key"] = total, per_key
    except Exception as err:  # a cause that cannot be counted cannot be dismissed
        log.warning("Triage count %s failed: %s", cause.name, _error(err))
        found["count_error"] = _error(err)
        if cause.log is None:
            found["matches"] = found["min_matches"]  # found, but not countable: decide() makes it real


def decide_verdict(settings: Mapping[str, Any], evidence: Mapping[str, Any]) -> dict[str, Any]:
    """The verdict, and whether the runbook starts (real, not a dry run) with the conf the intake built for it."""
    rule = _rule(settings["rule"])
    verdict = decide.decide(
        count=evidence.get("count"),
        count_error=str(evidence.get("count_error", "")),
        noise_at_most=rule.noise_at_most,
        causes=evidence.get("causes") or [],
        trend=evidence.get("trend"),
        owner_maps=settings.get("owner_maps") or {},
    ).as_dict()
    triage = settings["triage"]
    real = verdict["verdict"] == decide.REAL
    verdict.update(
        runbook_dag_id=triage.get("runbook_dag_id", ""),
        runbook_run_id=triage.get("runbook_run_id", ""),
        runbook_conf={
            **dict(triage.get("runbook_conf") or {}),
            "alert": settings["alert"],
            "dry_run": bool(settings["dry_run"]),
        },
        start_runbook=real and not settings["dry_run"] and bool(triage.get("runbook_dag_id")),
        skip_reason="",
    )
    if real and settings["dry_run"]:
        verdict["skip_reason"] = f"dry run: would start {verdict['runbook_dag_id']}"
    elif not real:
        verdict["skip_reason"] = f"{verdict['verdict']}: no runbook"
    return verdict


def silence_noise(settings: Mapping[str, Any], verdict: Mapping[str, Any], run_id: str) -> dict[str, Any]:
    """Noise: silence exactly this alert in Alertmanager for the rule's time (at most the configured maximum).

    Once per incident: the silence's comment names the triage run (the alert's identity), and an active silence of
    that incident with the same matchers is found and reused before a new one is created (a retry after the POST
    was sent, its answer lost, adds none). Dry run and the maintenance window silence nothing.
    """
    if verdict["verdict"] != decide.NOISE:
        return {"silenced": False, "reason": "not noise"}
    if not settings["allow_silence"]:
        return {"silenced": False, "reason": "silencing is switched off (allow_silence)"}
    rule = _rule(settings["rule"])
    alert = settings["alert"]
    labels = {str(k): str(v) for k, v in (alert.get("labels") or {}).items()}
    now = datetime.now(UTC)
    # Checked before the gate, so a rule asking for too long a silence fails even in a dry run: a config error.
    try:
        request = silences.build_silence(
            labels,
            minutes=rule.silence_minutes,
            max_minutes=float(settings["max_silence_minutes"]),
            created_by=str(settings["silence_created_by"]),
            reason=f"Toilless triage: noise ({verdict['reason']})",
            incident=run_id,
            now=now,
        )
    except silences.SilenceError as err:
        # Reported with the verdict, then the run fails (report_outcome): nothing was sent to Alertmanager.
        log.error("Not silencing %s: %s", alert.get("alertname"), err)
        return {"silenced": False, "error": str(err), "minutes": rule.silence_minutes}
    policy = gate.sop_gate_policy(load_config("toilless"), {**settings, "gate": {}})
    # Silences are cheap to undo (expire): no cool-down or breaker, but dry run and the maintenance window hold.
    decision = gate.check_action("silence", str(alert.get("alertname", "alert")), now=now, policy=policy)
    if not decision.allowed:
        return {"silenced": False, "reason": decision.reason, "minutes": rule.silence_minutes}
    from toilless.hooks.alertmanager import AlertmanagerHook

    hook = AlertmanagerHook(alertmanager_conn_id=settings["alertmanager_conn_id"])
    filters = [silences.filter_matcher("alertname", str(alert.get("alertname", "")))]
    existing = next((s for s in hook.list_silences(filters=filters) if silences.same_silence(s, request, run_id)), None)
    if existing:
        silence_id = existing["id"]
    else:
        with action_result(f"silence {rule.silence_minutes:g} min", str(alert.get("alertname", "alert"))):
            silence_id = hook.create_silence(request.body(), now=now)
    registry = read_state(SILENCES_STATE_KEY) or {}
    keep = timedelta(days=float(settings.get("silence_list_keep_days", 8)))
    registry = silences.prune(
        silences.record(registry, silence_id, request, alertname=str(alert.get("alertname", "")), run_id=run_id),
        now=now,
        keep=keep,
    )
    write_state(SILENCES_STATE_KEY, registry)
    return {
        "silenced": True,
        "silence_id": silence_id,
        "reused": existing is not None,
        "ends_at": request.body()["endsAt"],
        "minutes": rule.silence_minutes,
    }


def report_outcome(
    context: Mapping[str, Any],
    settings: Mapping[str, Any],
    verdict: Mapping[str, Any],
    silence: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The verdict with its evidence to the alert's channel (prod: urgent); a known cause also to its owner."""
    from toilless.intake.decisions import environment_for, is_prod

    labels = settings["alert"].get("labels") or {}
    prod = is_prod(environment_for(labels, settings), settings)
    channel = settings["urgent_channel"] if prod else settings["report_channel"]
    title = messages.title(verdict, dry_run=bool(settings["dry_run"]))
    lines = messages.report_lines(settings, verdict, silence)
    status = {"noise": "ok", "known_cause": "warning"}.get(verdict["verdict"], "critical")
    posted = send_report(context, channel=channel, title=title, lines=lines, status=status)
    if verdict["verdict"] == decide.KNOWN_CAUSE and verdict.get("owner_channel"):
        owner = messages.owner_message(settings, verdict)
        post_message(verdict["owner_channel"], owner["text"], blocks=owner["blocks"])
    for notice in verdict.get("owner_notices") or []:
        owner = messages.counted_owner_message(settings, verdict, notice)
        post_message(notice["channel"], owner["text"], blocks=owner["blocks"])
    if silence and silence.get("error"):
        raise InvalidInput(f"noise not silenced: {silence['error']}")
    return {"channel": posted["channel"], "verdict": verdict["verdict"]}


# -- the silences Toilless created: listed for the weekly handoff, expired early on request -------------------------
def list_silences(now: datetime | None = None) -> list[dict[str, Any]]:
    """Every silence Toilless created that ended less than ``silence_list_keep_days`` ago, newest first, each with
    ``active``: what the weekly handoff lists (id, alert, matchers, until when, why, which run)."""
    registry = read_state(SILENCES_STATE_KEY) or {}
    return silences.listing(registry, now=now or datetime.now(UTC))


def expire_silence(
    silence_id: str,
    *,
    alertmanager_conn_id: str | None = None,
    by: str = "",
    read: Callable[[str], dict[str, Any] | None] | None = None,
    write: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """End a silence Toilless created now (``DELETE /api/v2/silence/{id}``) and note it in the list.

    Only silences in the list: Toilless does not end silences people made. Expiring an already expired one is a no-op.
    ``read``/``write`` keep the list (default: the run state, inside a task; the REST route passes the API
    server's, :mod:`toilless.sops.triage_alert.server`). A silence made for an incident is noted on its timeline (``by`` expired it).
    """
    from toilless.hooks.alertmanager import AlertmanagerHook

    read, write = read or read_state, write or write_state
    silence_id = silences.check_silence_id(silence_id)
    registry = read(SILENCES_STATE_KEY) or {}
    if silence_id not in registry:
        raise SilenceNotToilless(f"silence {silence_id} was not created by Toilless (not in {SILENCES_STATE_KEY})")
    conn_id = alertmanager_conn_id or load_config(DAG_ID)["alertmanager_conn_id"]
    hook = AlertmanagerHook(alertmanager_conn_id=conn_id)
    state = (hook.get_silence(silence_id).get("status") or {}).get("state")
    if state != "expired":
        incident_id = registry[silence_id].get("incident_id")
        if incident_id:
            target = registry[silence_id].get("alertname") or "alert"
            with action_result("expire silence", target, incident_id=incident_id, actor=by or "toilless"):
                hook.expire_silence(silence_id)
        else:
            hook.expire_silence(silence_id)
    now = datetime.now(UTC)
    registry[silence_id] = {**registry[silence_id], "expiredAt": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    if by:
        registry[silence_id]["expiredBy"] = by
    write(SILENCES_STATE_KEY, registry)
    return {"id": silence_id, "expired": True, "was": state}


class SilenceNotToilless(InvalidInput):
    """The silence id is not in the list of silences Toilless created (REST: 404)."""
