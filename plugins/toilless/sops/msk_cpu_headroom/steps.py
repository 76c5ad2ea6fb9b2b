"""The tasks of ``msk_cpu_headroom``: settings, the MSK hook, the pure modules, the gate and Slack.

The only module of the package that touches Airflow, always inside functions (the DAG file imports this at parse
time). Each function is one task body; ``dags/msk_cpu_headroom.py`` only wires them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from toilless.common.aws_contracts import AwsContractError
from toilless.common.config import FREE, OFF_ONLY, ConfigError, ParamRule, tighten
from toilless.common.msk_contracts import check_cluster_arn
from toilless.sops.msk_cpu_headroom import decide, headroom, messages, sizing, topics

if TYPE_CHECKING:
    from toilless.hooks.msk import MskHook

log = logging.getLogger(__name__)

DAG_ID = "msk_cpu_headroom"
CONFIG = DAG_ID
TITLE = "MSK CPU headroom"
PARAM_RULES = (
    ParamRule("allow_resize", "allow_resize", OFF_ONLY, "asking for a broker-type change"),
    ParamRule("approval_timeout_minutes", "approval_timeout_minutes", FREE, "how long to wait for each approval"),
)


class ClusterScopeError(ConfigError):
    """The run names no cluster, or one outside the configured clusters."""


def _hook(settings: Mapping[str, Any]) -> MskHook:
    from toilless.hooks.msk import MskHook

    return MskHook(aws_conn_id=settings["aws_conn_id"], region_name=settings.get("region") or None)


def resolve_settings(params: Mapping[str, Any], run_id: str) -> dict[str, Any]:
    """Configuration + Params (which only tighten it) + the cluster of this run, refused before anything is read."""
    from toilless.common.config import load_config
    from toilless.common.params import alert_from_params

    configured = load_config(CONFIG)
    configured["allow_resize"] = bool(configured["resize"]["enabled"])
    configured["approval_timeout_minutes"] = float(configured["approval"]["timeout_minutes"])
    settings, notes = tighten(configured, params, PARAM_RULES, config_name=CONFIG)
    settings["dry_run"] = bool(params.get("dry_run"))
    settings["notes"] = notes
    alert = alert_from_params(dict(params))
    settings["cluster_arn"] = cluster_for_run(settings, params.get("cluster_arn"), alert)
    settings["incident"] = incident_key(alert, run_id)
    # Checked once here so every later step can trust the table.
    sizing.broker_types(settings["broker_types"])
    headroom.HeadroomRules.from_config(settings["rules"])
    return settings


def cluster_for_run(settings: Mapping[str, Any], param_arn: str | None, alert: Mapping[str, Any] | None) -> str:
    """The cluster ARN: the Param, else the alert's labels (an ARN, or a cluster name from ``clusters``), else the
    configured default. A Param or alert ARN outside a non-empty ``clusters`` list is refused."""
    clusters: dict[str, str] = dict(settings.get("clusters") or {})
    arn = param_arn or ""
    if not arn and alert:
        labels = alert.get("labels") or {}
        arn = next((str(labels[k]) for k in settings["alert_arn_labels"] if labels.get(k)), "")
        if not arn:
            name = next((str(labels[k]) for k in settings["alert_name_labels"] if labels.get(k)), "")
            if name and name not in clusters:
                raise ClusterScopeError(
                    f"alert names cluster {name[:100]!r}, which is not in the configured clusters "
                    f"({', '.join(sorted(clusters)) or 'none'}): add it to `clusters`"
                )
            arn = clusters.get(name, "")
    arn = arn or settings.get("default_cluster_arn") or ""
    if not arn:
        raise ClusterScopeError(
            "no cluster: give the cluster_arn Param, an alert with its cluster, or default_cluster_arn"
        )
    try:
        check_cluster_arn(arn, parameter="cluster_arn")
    except AwsContractError as err:
        raise ClusterScopeError(str(err)) from err
    if clusters and arn not in clusters.values():
        raise ClusterScopeError(
            f"cluster {arn} is not one of the configured clusters: Params narrow the scope, never widen it"
        )
    return arn


def incident_key(alert: Mapping[str, Any] | None, run_id: str) -> str:
    """One firing alert (fingerprint + start) is one incident; a manual run is its own incident."""
    if alert and alert.get("fingerprint"):
        return f"{alert['fingerprint']}@{alert.get('startsAt', '')}"
    return run_id or "manual"


def measure_cpu(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Describe the cluster, then per broker CpuUser + CpuSystem over the last hour and 7 days, and per topic bytes in."""
    hook = _hook(settings)
    arn = settings["cluster_arn"]
    info = hook.describe_cluster(arn)
    provisioned = info.get("Provisioned") or {}
    name = info.get("ClusterName") or ""
    windows = settings["windows"]
    now = datetime.now(UTC)
    hour_start = now - timedelta(hours=1)
    week_start = now - timedelta(days=float(windows["week_days"]))
    hour_period, week_period = int(windows["hour_period_seconds"]), int(windows["week_period_seconds"])

    from toilless.hooks.msk import TOPIC_DIMENSION, TOPIC_METRIC

    brokers = hook.metric_dimension_values("CpuUser", name, "Broker ID")
    if not brokers:
        # No CPU metrics yet: brokers are numbered from 1.
        brokers = [str(i) for i in range(1, int(provisioned.get("NumberOfBrokerNodes") or 0) + 1)]
    cpu_hour = hook.broker_cpu(name, brokers, start=hour_start, end=now, period_seconds=hour_period)
    cpu_week = hook.broker_cpu(name, brokers, start=week_start, end=now, period_seconds=week_period)
    all_topics = hook.metric_dimension_values(TOPIC_METRIC, name, TOPIC_DIMENSION)
    read = all_topics[: int(windows["max_topics"])]
    rises: list[dict[str, Any]] = []
    if read:
        topic_hour = hook.topic_bytes_in(name, read, brokers, start=hour_start, end=now, period_seconds=hour_period)
        topic_week = hook.topic_bytes_in(name, read, brokers, start=week_start, end=now, period_seconds=week_period)
        rises = topics.topic_rises(topic_hour, topic_week, now=now.timestamp())
    log.info("Measured %s: %s broker(s), %s of %s topic(s)", name, len(brokers), len(read), len(all_topics))
    return {
        "measured_at": now.isoformat(),
        "cluster_arn": arn,
        "cluster_name": name,
        "cluster_state": info.get("State"),
        "instance_type": (provisioned.get("BrokerNodeGroupInfo") or {}).get("InstanceType"),
        "enhanced_monitoring": provisioned.get("EnhancedMonitoring"),
        "broker_ids": brokers,
        "cpu_hour": cpu_hour,
        "cpu_week": cpu_week,
        "topic_rises": rises,
        "topics_not_read": len(all_topics) - len(read),
    }


def decide_action(settings: Mapping[str, Any], measured: Mapping[str, Any]) -> dict[str, Any]:
    """The verdict (pure: decide.decide), and the approval request's text when a resize is recommended."""
    types = sizing.broker_types(settings["broker_types"])
    drivers = settings["drivers"]
    connect = settings["connect_component"]
    decision = decide.decide(
        measured,
        rules=headroom.HeadroomRules.from_config(settings["rules"]),
        topic_rules=topics.TopicRules(
            prefix=str(connect["prefix"]),
            connect_share=float(connect["share"]),
            driver_share=float(drivers["share"]),
            max_topics=int(drivers["max_topics"]),
        ),
        owners={str(k): str(v) for k, v in (settings.get("topic_owners") or {}).items()},
        types=types,
        target_used_pct=float(settings["target_used_pct"]),
        now=datetime.fromisoformat(measured["measured_at"]).timestamp(),
    )
    recommendation = decision.get("recommendation") or {}
    decision["to_resize"] = bool(
        decision["action"] == decide.RECOMMEND_RESIZE and recommendation.get("target_type") and settings["allow_resize"]
    )
    subject, body = ("", "")
    if decision["to_resize"]:
        subject, body = messages.approval_text(
            decision, settings["broker_types_source"], float(settings["approval_timeout_minutes"])
        )
    decision["approval_subject"] = subject
    decision["approval_body"] = body
    decision["second_approval_subject"] = f"Second approval (a different person): {subject}" if subject else ""
    decision["approval_timeout_minutes"] = float(settings["approval_timeout_minutes"])
    log.info("%s: %s, %s -> %s", decision["cluster_name"], decision["state"], decision["shape"], decision["action"])
    return decision


def notify_teams(settings: Mapping[str, Any], decision: Mapping[str, Any]) -> dict[str, Any]:
    """Ask the connect-component team to reduce the load, or the topics' owners; a dry run only says it would."""
    from toilless.common.reporting import post_message

    if decision["action"] == decide.ASK_CONNECT_COMPONENT:
        channel, message = settings["connect_component"]["channel"], messages.connect_component_message(decision)
        what = "reduce the load on connect-component topics"
    elif decision["action"] == decide.ASK_OWNERS:
        channel, message = settings["report_channel"], messages.owners_message(decision)
        what = "who owns the topics driving the spike"
    else:
        return {"posted": [], "would_post": []}
    notice = {"channel": channel, "what": what}
    if settings["dry_run"]:
        return {"posted": [], "would_post": [notice], "text": message["text"]}
    post_message(channel, message["text"], blocks=message["blocks"])
    return {"posted": [notice], "would_post": []}


def choose_path(settings: Mapping[str, Any], decision: Mapping[str, Any]) -> str:
    """Approvals for a recommended resize; the report otherwise (nothing to resize, or a dry run)."""
    if decision["to_resize"] and not settings["dry_run"]:
        return "first_approval"
    return "report_headroom"


def resize_broker_type(
    settings: Mapping[str, Any], decision: Mapping[str, Any], context: Mapping[str, Any]
) -> dict[str, Any]:
    """Two different approvers, then the gate at this moment, then UpdateBrokerType: once per incident."""
    from toilless.common import gate
    from toilless.common.config import load_config
    from toilless.sops.msk_cpu_headroom.resize import resize_once

    ti = context["ti"]
    approvals = (ti.xcom_pull(task_ids="first_approval"), ti.xcom_pull(task_ids="second_approval"))
    # Dry run read again at the moment of acting, not only from the decision.
    dry_run = bool(settings["dry_run"]) or bool(context["params"].get("dry_run"))
    policy = gate.sop_gate_policy(load_config("toilless"), settings, dry_run=dry_run)
    recommendation = decision["recommendation"]
    result = resize_once(
        _hook(settings),
        settings["cluster_arn"],
        from_type=recommendation["current_type"],
        target_type=recommendation["target_type"],
        incident=settings["incident"],
        approvals=approvals,
        allowed_types=[row["type"] for row in settings["broker_types"]],
        gate_policy=policy,
    )
    return {**result, "aws_conn_id": settings["aws_conn_id"], "region": settings.get("region") or None}


def report_headroom(
    context: Mapping[str, Any], settings: Mapping[str, Any], decision: Mapping[str, Any], notices: Mapping[str, Any]
) -> dict[str, Any]:
    from toilless.common.reporting import send_report

    ti = context["ti"]
    resize = ti.xcom_pull(task_ids="resize_broker_type")
    verification = ti.xcom_pull(task_ids="verify_cluster_active")
    lines = messages.report_lines(
        decision,
        price_source=settings["broker_types_source"],
        notices=notices,
        resize=resize,
        verification=verification or None,
        notes=list(settings["notes"]),
    )
    title = f"{TITLE}: {decision['state'].upper()} {decision['cluster_name']}"
    if settings["dry_run"]:
        title += " [dry run: nothing changed]"
    status = {"ok": "ok", "warning": "warning", "urgent": "critical"}.get(decision["state"], "info")
    send_report(context, channel=settings["report_channel"], title=title, lines=lines, status=status)
    return {"posted": True, "lines": [str(line) for line in lines], "state": decision["state"], "resize": resize}
