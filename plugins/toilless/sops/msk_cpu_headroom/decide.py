"""The cluster's verdict from what ``measure_cpu`` read: state, shape, and what to do. Pure (no Airflow, no network).

* state **ok** (or no data): nothing to do;
* a **spike** (or a shape not yet known: too little history): find the topics that drive it
  (:mod:`~toilless.sops.msk_cpu_headroom.topics`): ``ask_connect_component`` (their channel is asked to reduce the
  load) or ``ask_owners`` (owners from the topic-owner map, unknown owners listed);
* a **steady rise** or a **sustained** high level: ``recommend_resize`` to a larger broker type with the numbers and
  the cost difference (:mod:`~toilless.sops.msk_cpu_headroom.sizing`). Resizing itself needs two approvals by two
  different people and the action gate (:mod:`~toilless.sops.msk_cpu_headroom.resize`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from toilless.sops.msk_cpu_headroom import headroom, sizing, topics

NONE = "none"
ASK_CONNECT_COMPONENT = "ask_connect_component"
ASK_OWNERS = "ask_owners"
RECOMMEND_RESIZE = "recommend_resize"


def decide(
    measured: Mapping[str, Any],
    *,
    rules: headroom.HeadroomRules,
    topic_rules: topics.TopicRules,
    owners: Mapping[str, str],
    types: Sequence[sizing.BrokerType],
    target_used_pct: float,
    now: float,
) -> dict[str, Any]:
    """``measured``: cluster facts, ``cpu_hour`` / ``cpu_week`` per broker (``[(epoch, used %)]``) and
    ``topic_rises`` (:func:`toilless.sops.msk_cpu_headroom.topics.topic_rises`)."""
    brokers = [
        headroom.broker_headroom(
            broker,
            [tuple(p) for p in measured["cpu_hour"].get(broker, [])],
            [tuple(p) for p in measured["cpu_week"].get(broker, [])],
            now=now,
            rules=rules,
        )
        for broker in measured["broker_ids"]
    ]
    state = headroom.worst_state(b.state for b in brokers)
    shape = headroom.cluster_shape(brokers)
    used = [b.hour_used_pct for b in brokers if b.hour_used_pct is not None]
    busiest = max(used) if used else None
    decision: dict[str, Any] = {
        "cluster_arn": measured["cluster_arn"],
        "cluster_name": measured["cluster_name"],
        "instance_type": measured["instance_type"],
        "broker_count": len(brokers),
        "brokers": [b.as_dict() for b in brokers],
        "state": state,
        "shape": shape,
        "busiest_used_pct": busiest,
        "action": NONE,
        "topics": None,
        "recommendation": None,
        "enhanced_monitoring": measured.get("enhanced_monitoring"),
    }
    if state in (headroom.OK, headroom.NO_DATA) or busiest is None:
        return decision
    if shape in (headroom.SPIKE, headroom.UNKNOWN):
        attribution = topics.attribute_spike(measured.get("topic_rises") or [], owners=owners, rules=topic_rules)
        decision["topics"] = attribution
        decision["action"] = ASK_CONNECT_COMPONENT if attribution["route"] == topics.CONNECT_COMPONENT else ASK_OWNERS
        return decision
    decision["recommendation"] = sizing.recommend(
        str(measured["instance_type"]),
        brokers=len(brokers),
        busiest_used_pct=busiest,
        target_used_pct=target_used_pct,
        types=types,
    )
    decision["action"] = RECOMMEND_RESIZE
    return decision
