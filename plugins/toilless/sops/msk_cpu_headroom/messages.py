"""The SOP's Slack texts: the request to the connect-component team, the question to topic owners, the approval
request and the report lines. Pure; every outside value (cluster and topic names, owners) is escaped through
``toilless.common.slack``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from toilless.common import slack
from toilless.sops.msk_cpu_headroom.decide import ASK_CONNECT_COMPONENT, ASK_OWNERS, RECOMMEND_RESIZE


def rate(bytes_per_s: float) -> str:
    """Bytes per second for people: B/s, KB/s, MB/s (powers of 1000, as CloudWatch's console shows them)."""
    value = float(bytes_per_s)
    for unit in ("B/s", "KB/s", "MB/s"):
        if abs(value) < 1000:
            return f"{value:,.1f} {unit}"
        value /= 1000
    return f"{value:,.1f} GB/s"


def cpu_line(decision: Mapping[str, Any]) -> slack.Mrkdwn:
    busiest = max(
        (b for b in decision["brokers"] if b["hour_used_pct"] is not None),
        key=lambda b: b["hour_used_pct"],
        default=None,
    )
    if busiest is None:
        return slack.mrkdwn("{}: no CPU data in the last hour", slack.code(decision["cluster_name"]))
    return slack.mrkdwn(
        "{} ({} x {}): {}, {}; busiest broker {} at {}% CPU used (user + system) over the last hour, "
        "peak {}%, 7-day median {}%, trend {} points/day",
        slack.code(decision["cluster_name"]),
        decision["broker_count"],
        slack.code(decision["instance_type"]),
        decision["state"].upper(),
        decision["shape"].replace("_", " "),
        busiest["broker_id"],
        _num(busiest["hour_used_pct"]),
        _num(busiest["hour_peak_pct"]),
        _num(busiest["history_median_pct"]),
        _num(busiest["slope_pct_per_day"], signed=True),
    )


def topic_lines(drivers: list[Mapping[str, Any]], owners: Mapping[str, str] | None = None) -> list[slack.Mrkdwn]:
    lines = []
    for row in drivers:
        owner = (owners or {}).get(row["topic"])
        lines.append(
            slack.mrkdwn(
                "{} bytes in {} over the last hour (7-day median {}, +{}){}",
                slack.code(row["topic"], 250),
                rate(row["hour_bytes_per_s"]),
                rate(row["baseline_bytes_per_s"]),
                rate(row["rise_bytes_per_s"]),
                slack.mrkdwn(", owner {}", owner) if owner else slack.Mrkdwn(""),
            )
        )
    return lines


def connect_component_message(decision: Mapping[str, Any]) -> dict[str, Any]:
    """To the connect-component team's channel: the numbers, and please reduce the load."""
    attribution = decision["topics"]
    intro = slack.mrkdwn(
        ":warning: Kafka cluster {} is short of CPU and {}% of the rise in bytes in is on `connect-component` topics. "
        "Is a performance test running? Please reduce the load.",
        slack.code(decision["cluster_name"]),
        f"{attribution['connect_share'] * 100:.0f}",
    )
    lines = [cpu_line(decision), *topic_lines(attribution["drivers"])]
    body = slack.join(slack.bullets(lines, max_lines=20), "\n")
    return {"text": slack.mrkdwn("{}\n{}", intro, body), "blocks": [slack.section(intro), slack.section(body)]}


def owners_message(decision: Mapping[str, Any]) -> dict[str, Any]:
    """To the report channel: which topics drive the spike, their owners, and the topics nobody is known to own."""
    attribution = decision["topics"]
    intro = slack.mrkdwn(
        ":warning: Kafka cluster {} is short of CPU after a sudden spike. Owners of these topics: is the load "
        "expected, and can it be reduced?",
        slack.code(decision["cluster_name"]),
    )
    lines = [cpu_line(decision), *topic_lines(attribution["drivers"], attribution["owners"])]
    if attribution["unknown_owner"]:
        lines.append(
            slack.mrkdwn(
                "unknown owner (add them to topic_owners): {}",
                slack.join(slack.code(t, 250) for t in attribution["unknown_owner"]),
            )
        )
    if attribution["route"] == "no_topic_metrics":
        lines.append(
            slack.mrkdwn(
                "no per-topic metrics (enhanced monitoring is {}; per-topic bytes need PER_TOPIC_PER_BROKER)",
                decision.get("enhanced_monitoring") or "unknown",
            )
        )
    body = slack.join(slack.bullets(lines, max_lines=25), "\n")
    return {"text": slack.mrkdwn("{}\n{}", intro, body), "blocks": [slack.section(intro), slack.section(body)]}


def recommendation_line(recommendation: Mapping[str, Any], price_source: str) -> slack.Mrkdwn:
    if not recommendation.get("target_type"):
        return slack.mrkdwn("no larger broker type to recommend: {}", recommendation.get("reason", ""))
    return slack.mrkdwn(
        "recommend {} -> {} ({} -> {} vCPU): busiest broker {}% used, about {}% after{}; cost "
        "{} -> {} USD/month for {} brokers ({} USD/month; prices: {})",
        slack.code(recommendation["current_type"]),
        slack.code(recommendation["target_type"]),
        recommendation["current_vcpu"],
        recommendation["target_vcpu"],
        _num(recommendation["busiest_used_pct"]),
        _num(recommendation["projected_used_pct"]),
        "" if recommendation["reaches_target"] else " (still above the target: the largest type of the family)",
        f"{recommendation['current_usd_month']:,.2f}",
        f"{recommendation['target_usd_month']:,.2f}",
        recommendation["brokers"],
        f"{recommendation['delta_usd_month']:+,.2f}",
        price_source,
    )


def approval_text(decision: Mapping[str, Any], price_source: str, timeout_minutes: float) -> tuple[str, str]:
    """Subject and Markdown body of both approval requests (the notifier escapes them for Slack)."""
    rec = decision["recommendation"]
    subject = f"Change MSK broker type of {decision['cluster_name']} to {rec['target_type']}"
    body = "\n".join(
        [
            f"**{cpu_line(decision)}**",
            "",
            str(recommendation_line(rec, price_source)),
            "",
            "MSK replaces the brokers one at a time (rolling); clients see leader changes. "
            "**Two different people must approve** (the runbook: do it with a friend); a second approval by the "
            "same person does not count. The change also waits for the action gate (maintenance window, once per "
            f"incident). No answer within {timeout_minutes:g} minutes counts as Reject.",
        ]
    )
    return subject, body


def report_lines(
    decision: Mapping[str, Any],
    *,
    price_source: str,
    notices: Mapping[str, Any] | None,
    resize: Mapping[str, Any] | None,
    verification: Mapping[str, Any] | None,
    notes: list[str],
) -> list[Any]:
    lines: list[Any] = [cpu_line(decision)]
    for broker in decision["brokers"]:
        lines.append(
            slack.mrkdwn(
                "broker {}: {}% used (headroom {}%), {}",
                broker["broker_id"],
                _num(broker["hour_used_pct"]),
                _num(broker["headroom_pct"]),
                broker["shape"].replace("_", " "),
            )
        )
    action = decision["action"]
    if action in (ASK_CONNECT_COMPONENT, ASK_OWNERS):
        attribution = decision["topics"]
        lines.extend(topic_lines(attribution["drivers"], attribution["owners"]))
        if attribution["unknown_owner"]:
            lines.append(
                slack.mrkdwn("unknown owner: {}", slack.join(slack.code(t) for t in attribution["unknown_owner"]))
            )
    if action == RECOMMEND_RESIZE:
        lines.append(recommendation_line(decision["recommendation"], price_source))
    for notice in (notices or {}).get("posted", []):
        lines.append(slack.mrkdwn("asked in {}: {}", slack.code(notice["channel"]), notice["what"]))
    for notice in (notices or {}).get("would_post", []):
        lines.append(slack.mrkdwn("dry run: would ask in {}: {}", slack.code(notice["channel"]), notice["what"]))
    if resize:
        lines.append(slack.mrkdwn("resize: {} ({})", resize.get("outcome"), resize.get("reason") or ""))
    if verification:
        lines.append(
            slack.mrkdwn(
                "verified: cluster {} with broker type {}", verification.get("state"), verification.get("instance_type")
            )
        )
    lines.extend(notes)
    return lines


def _num(value: Any, *, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.1f}" if signed else f"{value:.1f}"
