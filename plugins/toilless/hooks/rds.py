"""RDS and CloudWatch for Toilless: describe instances, read FreeStorageSpace, list storage events, modify storage, tag.

Imports boto3 through the Amazon provider: import this module inside tasks, never at DAG-parse time. What a storage
change means to a SOP (markers, the action gate, exactly-once growth) lives in the SOP's package, not here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

from toilless.common import aws_contracts

log = logging.getLogger(__name__)

#: describe_db_instances filters take at most 100 values.
_FILTER_VALUES_PER_CALL = 100
#: GetMetricData accepts at most 500 queries per call.
_QUERIES_PER_CALL = 500


class InstanceNotFoundError(LookupError):
    """An instance named in the input does not exist in the region."""


class RdsHook(AwsBaseHook):
    """RDS and CloudWatch clients, built lazily from one AWS Connection.

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

    @property
    def region(self) -> str:
        """The region the RDS client talks to."""
        return self.rds.meta.region_name

    # -- reading -----------------------------------------------------------------------------------------------------

    def describe_instances(self, instance_ids: Sequence[str] = ()) -> list[dict[str, Any]]:
        """DB instances by id (every id must exist), else all of the region; paginated."""
        paginator = self.rds.get_paginator("describe_db_instances")
        ids = list(dict.fromkeys(instance_ids))
        if not ids:
            return [db for page in paginator.paginate() for db in page["DBInstances"]]
        found = []
        # A filter takes at most 100 values.
        for offset in range(0, len(ids), _FILTER_VALUES_PER_CALL):
            chunk = ids[offset : offset + _FILTER_VALUES_PER_CALL]
            aws_contracts.check_instance_filter(chunk)
            pages = paginator.paginate(Filters=[{"Name": "db-instance-id", "Values": chunk}])
            found.extend(db for page in pages for db in page["DBInstances"])
        missing = sorted(set(ids) - {db["DBInstanceIdentifier"] for db in found})
        if missing:
            raise InstanceNotFoundError(f"no RDS instance {', '.join(missing)} in region {self.region}")
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

    def instance_events(self, instance_id: str, *, minutes: int) -> list[tuple[datetime, str]]:
        """``(time, message)`` of the instance's RDS events in the last ``minutes`` (RDS keeps 14 days)."""
        minutes = min(max(1, int(minutes)), aws_contracts.EVENTS_MAX_DURATION_MINUTES)
        aws_contracts.check_describe_events(instance_id, minutes)
        paginator = self.rds.get_paginator("describe_events")
        pages = paginator.paginate(SourceType="db-instance", SourceIdentifier=instance_id, Duration=minutes)
        return [(_aware(event["Date"]), event.get("Message", "")) for page in pages for event in page.get("Events", [])]

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

    # -- changing ----------------------------------------------------------------------------------------------------

    def modify_allocated_storage(
        self,
        instance_id: str,
        *,
        target_gib: int,
        max_allocated_gib: int | None = None,
        storage_type: str | None = None,
    ) -> dict[str, Any]:
        """``modify_db_instance(AllocatedStorage=target, ApplyImmediately=True)``, checked against the API contract
        first; the new autoscaling limit too when given. Returns the ``DBInstance`` of the answer."""
        request: dict[str, Any] = {
            "DBInstanceIdentifier": instance_id,
            "AllocatedStorage": int(target_gib),
            "ApplyImmediately": True,
        }
        if max_allocated_gib:
            request["MaxAllocatedStorage"] = int(max_allocated_gib)
        aws_contracts.check_modify_db_instance(request, storage_type=storage_type)
        return self.rds.modify_db_instance(**request)["DBInstance"]

    def add_tags(self, resource_arn: str, tags: Mapping[str, str]) -> None:
        """``add_tags_to_resource``, checked against RDS's tag contract first."""
        tag_list = [{"Key": key, "Value": value} for key, value in tags.items()]
        aws_contracts.check_rds_tags(tag_list)
        self.rds.add_tags_to_resource(ResourceName=resource_arn, Tags=tag_list)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
