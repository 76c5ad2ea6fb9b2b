"""RDS storage: describe instances, read FreeStorageSpace from CloudWatch, grow allocated storage exactly once.

Imports boto3 through the Amazon provider: import this module inside tasks, never at DAG-parse time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

from toilless import rds_storage
from toilless.common import aws_contracts, gate

log = logging.getLogger(__name__)

#: Tag the guard writes on an instance after RDS accepted a storage modification: when, from, to, which run. It gives
#: the next runs the time of the last change (cool-down); it never exists for a request RDS refused.
MARKER_TAG = "toilless:storage-guard-last-change"
#: Tag with Toilless's recent storage changes on the instance (epoch seconds), for the circuit breaker.
HISTORY_TAG = "toilless:storage-guard-history"
#: RDS event messages of a storage modification (manual, by this guard, or by storage autoscaling).
_STORAGE_EVENT_TEXT = "modification to allocated storage"
#: How far ahead of this worker's clock a marker's time may be and still count (clocks differ a little).
_MARKER_CLOCK_SKEW = timedelta(minutes=5)
#: describe_db_instances filters take at most 100 values.
_FILTER_VALUES_PER_CALL = 100
#: GetMetricData accepts at most 500 queries per call.
_QUERIES_PER_CALL = 500


class InstanceNotFoundError(LookupError):
    """An instance named in the input does not exist in the region."""


class RdsStorageHook(AwsBaseHook):
    """RDS and CloudWatch clients for the storage guard, built lazily from one AWS Connection.

    :param aws_conn_id: AWS Connection id (``extra.endpoint_url`` points it at moto in the sandbox).
    :param region_name: AWS region; None = the Connection's region.
    """

    def __init__(self, *, aws_conn_id: str | None = "aws_default", region_name: str | None = None) -> None:
        super().__init__(aws_conn_id=aws_conn_id, region_name=region_name, client_type="rds")

    @cached_property
    def rds(self) -> Any:
        return self.conn

    @cached_property
    def cloudwatch(self) -> Any:
        return AwsBaseHook(aws_conn_id=self.aws_conn_id, region_name=self._region_name, client_type="cloudwatch").conn

    # -- reading -----------------------------------------------------------------------------------------------------

    def describe_instances(
        self, instance_ids: Sequence[str] = (), tag_filter: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """DB instances by id (every id must exist), else by tags, else all; paginated."""
        paginator = self.rds.get_paginator("describe_db_instances")
        ids = list(dict.fromkeys(instance_ids))
        if ids:
            found = []
            # A filter takes at most 100 values.
            for offset in range(0, len(ids), _FILTER_VALUES_PER_CALL):
                chunk = ids[offset : offset + _FILTER_VALUES_PER_CALL]
                aws_contracts.check_instance_filter(chunk)
                pages = paginator.paginate(Filters=[{"Name": "db-instance-id", "Values": chunk}])
                found.extend(db for page in pages for db in page["DBInstances"])
        else:
            found = [db for page in paginator.paginate() for db in page["DBInstances"]]
        if ids:
            missing = sorted(set(ids) - {db["DBInstanceIdentifier"] for db in found})
            if missing:
                raise InstanceNotFoundError(
                    f"no RDS instance {', '.join(missing)} in region {self.rds.meta.region_name}"
                )
        if tag_filter:
            found = [db for db in found if rds_storage.matches_tags(db.get("TagList") or [], tag_filter)]
        return found

    def describe_instance(self, instance_id: str) -> dict[str, Any]:
        """One instance, read fresh (used right before and after a modification)."""
        return self.describe_instances([instance_id])[0]

    def free_storage_history(
        self, instance_ids: Iterable[str], *, start: datetime, end: datetime, period_seconds: int
    ) -> dict[str, list[tuple[float, float]]]:
        """FreeStorageSpace (Minimum per period) per instance from GetMetricData, all pages."""
        ids = list(instance_ids)
        history: dict[str, list[tuple[float, float]]] = {instance_id: [] for instance_id in ids}
        for offset in range(0, len(ids), _QUERIES_PER_CALL):
            chunk = ids[offset : offset + _QUERIES_PER_CALL]
            queries = [
                {
                    "Id": f"free{index}",
                    "Label": instance_id,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/RDS",
                            "MetricName": "FreeStorageSpace",
                            "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": instance_id}],
                        },
                        "Period": period_seconds,
                        "Stat": "Minimum",
                    },
                    "ReturnData": True,
                }
                for index, instance_id in enumerate(chunk)
            ]
            aws_contracts.check_metric_data_queries(queries)
            by_query_id = {query["Id"]: query["Label"] for query in queries}
            kwargs: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end}
            while True:
                response = self.cloudwatch.get_metric_data(**kwargs)
                for result in response["MetricDataResults"]:
                    target = history[by_query_id[result["Id"]]]
                    target.extend(
                        (stamp.timestamp(), float(value))
                        for stamp, value in zip(result["Timestamps"], result["Values"], strict=True)
                    )
                token = response.get("NextToken")
                if not token:
                    break
                kwargs["NextToken"] = token
        return history

    def last_storage_change(
        self, description: Mapping[str, Any], *, now: datetime, lookback: timedelta
    ) -> datetime | None:
        """When storage was last modified: the guard's marker tag or an RDS storage event, whichever is newer."""
        moments = []
        for tag in description.get("TagList") or []:
            if tag.get("Key") == MARKER_TAG:
                moment = rds_storage.parse_marker(tag.get("Value", ""))
                # A marker dated ahead of now (beyond clock skew) records no request anyone made: an edited tag or a
                # broken clock must not hold the guard in cool-down while the disk fills.
                if moment is not None and moment <= now + _MARKER_CLOCK_SKEW:
                    moments.append(moment)
                elif moment is not None:
                    log.warning(
                        "%s: ignoring marker dated in the future (%s)", description["DBInstanceIdentifier"], moment
                    )
        # RDS keeps 14 days of events: a longer Duration is refused.
        minutes = min(max(1, int(lookback.total_seconds() // 60)), aws_contracts.EVENTS_MAX_DURATION_MINUTES)
        aws_contracts.check_describe_events(description["DBInstanceIdentifier"], minutes)
        paginator = self.rds.get_paginator("describe_events")
        pages = paginator.paginate(
            SourceType="db-instance",
            SourceIdentifier=description["DBInstanceIdentifier"],
            Duration=minutes,
        )
        for page in pages:
            for event in page.get("Events", []):
                if _STORAGE_EVENT_TEXT in event.get("Message", "").lower():
                    moments.append(_aware(event["Date"]))
        return max(moments) if moments else None

    # -- acting -----------------------------------------------------------------------------------------------------

    def grow_storage_once(
        self,
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
        current = self.describe_instance(instance_id)
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
            own = rds_storage.marker_run(rds_storage.marker_value(now, run_id, from_gib, target_gib))
            landed = target_gib in (allocated, int(pending) if pending is not None else None)
            if landed and rds_storage.marker_run(tags.get(MARKER_TAG, "")) != own:
                result["marker"] = self._write_marker(current, tags, now, run_id, from_gib, target_gib)
            return result
        if current["DBInstanceStatus"] not in tuple(modifiable_statuses):
            raise RuntimeError(
                f"{instance_id} is {current['DBInstanceStatus']!r} now, not modifiable: not growing storage"
            )
        if allocated != from_gib:
            # The decision was made for another size: acting now could grow more than anyone approved.
            raise RuntimeError(
                f"{instance_id}: allocated storage changed from {from_gib} to {allocated} GiB since the decision; "
                "not modifying. The next run decides again."
            )
        lookback = max(gate_policy.cooldown, gate_policy.breaker_window) + timedelta(hours=1)
        history = gate.TargetHistory(
            last_action_at=self.last_storage_change(current, now=now, lookback=lookback),
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
        request: dict[str, Any] = {
            "DBInstanceIdentifier": instance_id,
            "AllocatedStorage": int(target_gib),
            "ApplyImmediately": True,
        }
        if new_max_allocated_gib:
            request["MaxAllocatedStorage"] = int(new_max_allocated_gib)
        aws_contracts.check_modify_db_instance(request, storage_type=current.get("StorageType"))
        response = self.rds.modify_db_instance(**request)["DBInstance"]
        log.info("%s: requested allocated storage %s -> %s GiB", instance_id, allocated, target_gib)
        marker = self._write_marker(current, tags, now, run_id, allocated, target_gib)
        return {
            **result,
            "modified": True,
            "outcome": "modified",
            "allocated_gib": int(response.get("AllocatedStorage", allocated)),
            "marker": marker,
        }

    def _write_marker(
        self,
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
        new_tags = [
            {"Key": MARKER_TAG, "Value": rds_storage.marker_value(now, run_id, from_gib, target_gib)},
            {"Key": HISTORY_TAG, "Value": gate.encode_history(history, now=now, keep=timedelta(days=7))},
        ]
        aws_contracts.check_rds_tags(new_tags)
        try:
            self.rds.add_tags_to_resource(ResourceName=current["DBInstanceArn"], Tags=new_tags)
        except Exception as err:  # reported, not raised: the change itself was requested
            log.error(
                "%s: storage change requested but the marker tag was not written: %s",
                current["DBInstanceIdentifier"],
                err,
            )
            return {"written": False, "error": str(err)[:500]}
        return {"written": True, "value": new_tags[0]["Value"]}

    def expansion_status(self, instance_id: str, target_gib: int) -> dict[str, Any]:
        """Whether a storage change has landed: allocation at target and the instance usable again."""
        current = self.describe_instance(instance_id)
        allocated = int(current["AllocatedStorage"])
        status = current["DBInstanceStatus"]
        pending = (current.get("PendingModifiedValues") or {}).get("AllocatedStorage")
        done = allocated >= target_gib and pending is None and status in ("available", "storage-optimization")
        return {
            "instance_id": instance_id,
            "status": status,
            "allocated_gib": allocated,
            "target_gib": target_gib,
            "pending_gib": pending,
            "done": done,
        }


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
