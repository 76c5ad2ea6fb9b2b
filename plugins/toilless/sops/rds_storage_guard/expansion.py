"""Growing one instance's storage exactly once, through an RDS hook passed in (``toilless.hooks.rds.RdsHook``).

No Airflow import: the hook is an argument, so the safety tests drive this with a fake RDS client. It re-reads the
instance, checks the action gate at the moment of acting, modifies, and only then writes the marker tags.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from toilless.common import aws_contracts, gate
from toilless.incidents import action_result
from toilless.sops.rds_storage_guard.markers import (
    HISTORY_TAG,
    MARKER_CLOCK_SKEW,
    MARKER_TAG,
    STORAGE_EVENT_TEXT,
    marker_run,
    marker_value,
    parse_marker,
)

log = logging.getLogger(__name__)


class RdsClient(Protocol):
    """What this module needs of ``toilless.hooks.rds.RdsHook``."""

    def describe_instance(self, instance_id: str) -> dict[str, Any]: ...

    def instance_events(self, instance_id: str, *, minutes: int) -> list[tuple[datetime, str]]: ...

    def modify_allocated_storage(
        self, instance_id: str, *, target_gib: int, max_allocated_gib: int | None = ..., storage_type: str | None = ...
    ) -> dict[str, Any]: ...

    def add_tags(self, resource_arn: str, tags: Mapping[str, str]) -> None: ...


def last_storage_change(
    hook: RdsClient, description: Mapping[str, Any], *, now: datetime, lookback: timedelta
) -> datetime | None:
    """When storage was last modified: the guard's marker tag or an RDS storage event, whichever is newer."""
    instance_id = description["DBInstanceIdentifier"]
    moments = []
    for tag in description.get("TagList") or []:
        if tag.get("Key") == MARKER_TAG:
            moment = parse_marker(tag.get("Value", ""))
            # A marker dated ahead of now (beyond clock skew) records no request anyone made: an edited tag or a
            # broken clock must not hold the guard in cool-down while the disk fills.
            if moment is not None and moment <= now + MARKER_CLOCK_SKEW:
                moments.append(moment)
            elif moment is not None:
                log.warning("%s: ignoring marker dated in the future (%s)", instance_id, moment)
    # RDS keeps 14 days of events: the hook caps the Duration.
    for moment, message in hook.instance_events(instance_id, minutes=int(lookback.total_seconds() // 60)):
        if STORAGE_EVENT_TEXT in message.lower():
            moments.append(moment)
    return max(moments) if moments else None


def grow_storage_once(
    hook: RdsClient,
    instance_id: str,
    *,
    from_gib: int,
    target_gib: int,
    new_max_allocated_gib: int | None,
    run_id: str,
    gate_policy: gate.GatePolicy,
    modifiable_statuses: Iterable[str] = ("available", "storage-full"),
    now: datetime | None = None,
) -> dict[str, Any]:
    """Set allocated storage to ``target_gib`` unless that is already done or requested; never grows twice.

    The target is absolute and was decided before: re-running this (a retry after a crash between the
    modification and its verification) finds the allocation, or the pending change, at the target and does
    nothing. The instance is re-read right before acting, and the decision's starting point must still hold:
    if someone else changed the allocation meanwhile, nothing is done and the change is reported.

    Right before the modification the action gate is checked with what was just read (dry run, cool-down since
    the last storage change, circuit breaker, maintenance window): a retry after the window opened does not
    grow. The marker tag is written only after RDS accepted the request, so it always means "a change was
    requested": a refused request (StorageQuotaExceeded, ...) leaves nothing that would block the next run.
    """
    now = now or datetime.now(UTC)
    aws_contracts.check_db_instance_identifier(instance_id)
    current = hook.describe_instance(instance_id)
    allocated = int(current["AllocatedStorage"])
    pending = (current.get("PendingModifiedValues") or {}).get("AllocatedStorage")
    tags = {tag.get("Key"): tag.get("Value", "") for tag in current.get("TagList") or []}
    result: dict[str, Any] = {
        "instance_id": instance_id,
        "from_gib": from_gib,
        "target_gib": target_gib,
        "run_id": run_id,
    }
    if allocated >= target_gib or (pending is not None and int(pending) >= target_gib):
        log.info(
            "%s already at or growing to %s GiB (allocated %s, pending %s): nothing to do",
            instance_id,
            target_gib,
            allocated,
            pending,
        )
        result.update(modified=False, outcome="already_done", allocated_gib=allocated)
        # A crash between the accepted modification and the marker lost the marker: this run's own change
        # (exactly its target) is recorded now, so cool-down and circuit breaker still count it.
        own = marker_run(marker_value(now, run_id, from_gib, target_gib))
        landed = target_gib in (allocated, int(pending) if pending is not None else None)
        if landed and marker_run(tags.get(MARKER_TAG, "")) != own:
            result["marker"] = _write_marker(hook, current, tags, now, run_id, from_gib, target_gib)
        return result
    if current["DBInstanceStatus"] not in tuple(modifiable_statuses):
        raise RuntimeError(f"{instance_id} is {current['DBInstanceStatus']!r} now, not modifiable: not growing storage")
    if allocated != from_gib:
        # The decision was made for another size: acting now could grow more than anyone approved.
        raise RuntimeError(
            f"{instance_id}: allocated storage changed from {from_gib} to {allocated} GiB since the decision; "
            "not modifying. The next run decides again."
        )
    lookback = max(gate_policy.cooldown, gate_policy.breaker_window) + timedelta(hours=1)
    history = gate.TargetHistory(
        last_action_at=last_storage_change(hook, current, now=now, lookback=lookback),
        recent_actions=gate.decode_history(tags.get(HISTORY_TAG)),
    )
    verdict = gate.check_action(
        f"grow storage {allocated} -> {target_gib} GiB", instance_id, now=now, policy=gate_policy, history=history
    )
    result["gate"] = verdict.as_dict()
    if not verdict.allowed:
        log.warning("%s: not growing storage: %s", instance_id, verdict.reason)
        outcome = "dry_run" if verdict.check == gate.DRY_RUN else "gate_refused"
        return {**result, "modified": False, "outcome": outcome, "allocated_gib": allocated}
    with action_result(f"grow storage {allocated} -> {target_gib} GiB", instance_id):
        response = hook.modify_allocated_storage(
            instance_id,
            target_gib=target_gib,
            max_allocated_gib=new_max_allocated_gib,
            storage_type=current.get("StorageType"),
        )
    log.info("%s: requested allocated storage %s -> %s GiB", instance_id, allocated, target_gib)
    marker = _write_marker(hook, current, tags, now, run_id, allocated, target_gib)
    return {
        **result,
        "modified": True,
        "outcome": "modified",
        "allocated_gib": int(response.get("AllocatedStorage", allocated)),
        "marker": marker,
    }


def _write_marker(
    hook: RdsClient,
    current: Mapping[str, Any],
    tags: Mapping[str, str],
    now: datetime,
    run_id: str,
    from_gib: int,
    target_gib: int,
) -> dict[str, Any]:
    """Record a requested change on the instance: the marker and the circuit breaker's history.

    After the modification was accepted, a failure here must not turn into a retry that could act again: it is
    logged and reported, and RDS's own event for the modification still gives later runs the cool-down.
    """
    history = (*gate.decode_history(tags.get(HISTORY_TAG)), now)
    new_tags = {
        MARKER_TAG: marker_value(now, run_id, from_gib, target_gib),
        HISTORY_TAG: gate.encode_history(history, now=now, keep=timedelta(days=7)),
    }
    # Checked before the try: a tag breaking RDS's contract is a bug to raise, not a write failure to report.
    aws_contracts.check_rds_tags([{"Key": key, "Value": value} for key, value in new_tags.items()])
    try:
        hook.add_tags(current["DBInstanceArn"], new_tags)
    except Exception as err:  # reported, not raised: the change itself was requested
        log.error(
            "%s: storage change requested but the marker tag was not written: %s",
            current["DBInstanceIdentifier"],
            err,
        )
        return {"written": False, "error": str(err)[:500]}
    return {"written": True, "value": new_tags[MARKER_TAG]}
