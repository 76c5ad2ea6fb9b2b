"""Changing a cluster's broker type at most once per incident, through an MSK hook passed in
(``toilless.hooks.msk.MskHook``). No Airflow import: tests drive it with botocore's Stubber.

Order: the two-person rule; the ARN and target checked against the API contract and the allowed list; the cluster
re-read (DescribeClusterV2: state, broker type, CurrentVersion, tags); nothing to do if it already has the target
type; refused unless ACTIVE and still of the type the decision was made for; the action gate with the history read
from the cluster's own tags (dry run, once per incident, circuit breaker, cool-down, maintenance window); then
UpdateBrokerType with the CurrentVersion just read, and the marker tags. A retry after a crash between the change
and the marker finds the cluster UPDATING (refused, not changed twice) or already at the target type.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from toilless.common import gate, msk_contracts
from toilless.common.aws_contracts import tag_safe
from toilless.incidents import action_result
from toilless.sops.msk_cpu_headroom.approvals import two_person_rule

log = logging.getLogger(__name__)

#: Tag the SOP writes on a cluster after MSK accepted a broker-type change: when, which incident, from, to.
MARKER_TAG = "toilless:msk-resize-last"
#: Recent broker-type changes by Toilless (epoch seconds), for the circuit breaker.
HISTORY_TAG = "toilless:msk-resize-history"


class MskClient(Protocol):
    def describe_cluster(self, cluster_arn: str) -> dict[str, Any]: ...

    def update_broker_type(
        self, cluster_arn: str, *, current_version: str, target_instance_type: str, allowed_types: Iterable[str]
    ) -> str: ...

    def tag_cluster(self, cluster_arn: str, tags: Mapping[str, str]) -> None: ...


def instance_type(info: Mapping[str, Any]) -> str | None:
    return ((info.get("Provisioned") or {}).get("BrokerNodeGroupInfo") or {}).get("InstanceType")


def marker_value(moment: datetime, incident: str, from_type: str, to_type: str) -> str:
    head = f"{moment.astimezone(UTC).isoformat(timespec='seconds')} from={from_type} to={to_type} incident="
    return head + tag_safe(incident, max_length=256 - len(head))


def parse_marker(value: str) -> tuple[datetime | None, str | None]:
    """(time, incident) of a marker value; (None, None) when unreadable."""
    parts = (value or "").split(" ")
    try:
        moment = datetime.fromisoformat(parts[0])
    except ValueError:
        return None, None
    incident = next((p[len("incident=") :] for p in parts if p.startswith("incident=")), None)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)), incident


def resize_once(
    hook: MskClient,
    cluster_arn: str,
    *,
    from_type: str,
    target_type: str,
    incident: str,
    approvals: tuple[Mapping[str, Any] | None, Mapping[str, Any] | None],
    allowed_types: Iterable[str],
    gate_policy: gate.GatePolicy,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Change the broker type to ``target_type`` if two different people approved and the gate allows it now."""
    now = now or datetime.now(UTC)
    allowed_types = list(allowed_types)
    result: dict[str, Any] = {
        "cluster_arn": cluster_arn,
        "from_type": from_type,
        "target_type": target_type,
        "incident": incident,
        "modified": False,
    }
    rule = two_person_rule(*approvals)
    result["approval"] = rule
    if not rule["approved"]:
        log.warning("Not changing the broker type of %s: %s", cluster_arn, rule["reason"])
        return {**result, "outcome": "not_approved", "reason": rule["reason"]}
    msk_contracts.check_cluster_arn(cluster_arn)
    msk_contracts.check_target_instance_type(target_type, allowed_types)
    info = hook.describe_cluster(cluster_arn)
    current = instance_type(info)
    state = info.get("State")
    tags = dict(info.get("Tags") or {})
    if current == target_type:
        log.info("%s already has broker type %s: nothing to do", cluster_arn, target_type)
        return {**result, "outcome": "already_done", "reason": f"already {target_type}", "state": state}
    if state != "ACTIVE":
        reason = f"cluster is {state}, not ACTIVE (an operation is running): not changing it now"
        return {**result, "outcome": "blocked", "reason": reason, "state": state}
    if current != from_type:
        reason = f"broker type changed from {from_type} to {current} since the decision: not changing it"
        return {**result, "outcome": "blocked", "reason": reason, "state": state}
    marker_at, marker_incident = parse_marker(tags.get(MARKER_TAG, ""))
    if marker_at is not None and gate.in_the_future(marker_at, now=now):
        marker_at, marker_incident = None, None
    history = gate.TargetHistory(
        last_action_at=marker_at,
        recent_actions=gate.decode_history(tags.get(HISTORY_TAG), now=now),
        incident_done=marker_incident is not None and marker_incident == tag_safe(incident, max_length=len(incident)),
        incident_note=f"marker {tags.get(MARKER_TAG, '')[:120]}",
    )
    verdict = gate.check_action(
        f"change broker type {current} -> {target_type}", cluster_arn, now=now, policy=gate_policy, history=history
    )
    result["gate"] = verdict.as_dict()
    if not verdict.allowed:
        log.warning("%s: not changing the broker type: %s", cluster_arn, verdict.reason)
        outcome = "dry_run" if verdict.check == gate.DRY_RUN else "gate_refused"
        return {**result, "outcome": outcome, "reason": verdict.reason, "state": state}
    with action_result(f"resize brokers {current} -> {target_type}", cluster_arn):
        operation = hook.update_broker_type(
            cluster_arn,
            current_version=str(info.get("CurrentVersion")),
            target_instance_type=target_type,
            allowed_types=allowed_types,
        )
    log.info("%s: UpdateBrokerType %s -> %s accepted (%s)", cluster_arn, current, target_type, operation)
    new_tags = {
        MARKER_TAG: marker_value(now, incident, str(current), target_type),
        HISTORY_TAG: gate.encode_history(
            (*gate.decode_history(tags.get(HISTORY_TAG), now=now), now), now=now, keep=timedelta(days=30)
        ),
    }
    msk_contracts.check_msk_tags(new_tags)
    try:
        hook.tag_cluster(cluster_arn, new_tags)
        marker: dict[str, Any] = {"written": True, "value": new_tags[MARKER_TAG]}
    except Exception as err:  # reported, not raised: the change itself was accepted; MSK's state guards a retry
        log.error("%s: broker type change requested but the marker tag was not written: %s", cluster_arn, err)
        marker = {"written": False, "error": str(err)[:500]}
    return {
        **result,
        "modified": True,
        "outcome": "modified",
        "reason": verdict.reason,
        "operation_arn": operation,
        "marker": marker,
    }
