"""Amazon MSK and its CloudWatch metrics for Toilless: describe a cluster, read broker CPU and per-topic bytes in,
change the broker type, tag the cluster.

Built on the Amazon provider's ``AwsBaseHook`` (the provider has no MSK or CloudWatch-metrics hook); clients are built
lazily. Import inside tasks, never at DAG-parse time. What a resize means to a SOP (approvals, the action gate,
once per incident) lives in the SOP's package, not here. Every request is checked against the API contract first
(``toilless.common.msk_contracts``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

from toilless.common import msk_contracts
from toilless.common.errors import InvalidInput

log = logging.getLogger(__name__)

NAMESPACE = "AWS/Kafka"
CLUSTER_DIMENSION = "Cluster Name"
BROKER_DIMENSION = "Broker ID"
TOPIC_DIMENSION = "Topic"
CPU_METRICS = ("CpuUser", "CpuSystem")
TOPIC_METRIC = "BytesInPerSec"


class ClusterNotFoundError(InvalidInput):
    """The cluster ARN names no MSK cluster in the region (bad input: never retried, nothing changed)."""


class MskHook(AwsBaseHook):
    """MSK (``kafka``) and CloudWatch clients from one AWS Connection.

    :param aws_conn_id: AWS Connection id (``extra.endpoint_url`` points it at moto in tests and the sandbox).
    :param region_name: AWS region; None = the Connection's region.
    """

    def __init__(self, *, aws_conn_id: str | None = "aws_default", region_name: str | None = None) -> None:
        super().__init__(aws_conn_id=aws_conn_id, region_name=region_name, client_type="kafka")

    @cached_property
    def kafka(self) -> Any:
        return self.conn

    @cached_property
    def cloudwatch(self) -> Any:
        return AwsBaseHook(aws_conn_id=self.aws_conn_id, region_name=self._region_name, client_type="cloudwatch").conn

    # -- the cluster -------------------------------------------------------------------------------------------------

    def describe_cluster(self, cluster_arn: str) -> dict[str, Any]:
        """DescribeClusterV2's ``ClusterInfo``; an unknown ARN raises :class:`ClusterNotFoundError`."""
        from botocore.exceptions import ClientError

        msk_contracts.check_cluster_arn(cluster_arn)
        try:
            return self.kafka.describe_cluster_v2(ClusterArn=cluster_arn)["ClusterInfo"]
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code in ("NotFoundException", "ResourceNotFoundException"):
                raise ClusterNotFoundError(f"no MSK cluster {cluster_arn} (DescribeClusterV2: {code})") from err
            raise

    def update_broker_type(
        self, cluster_arn: str, *, current_version: str, target_instance_type: str, allowed_types: Iterable[str]
    ) -> str:
        """UpdateBrokerType; returns the ClusterOperationArn."""
        request = {
            "ClusterArn": cluster_arn,
            "CurrentVersion": current_version,
            "TargetInstanceType": target_instance_type,
        }
        msk_contracts.check_update_broker_type(request, allowed_types)
        return self.kafka.update_broker_type(**request)["ClusterOperationArn"]

    def tag_cluster(self, cluster_arn: str, tags: Mapping[str, str]) -> None:
        msk_contracts.check_cluster_arn(cluster_arn, parameter="ResourceArn")
        msk_contracts.check_msk_tags(tags)
        self.kafka.tag_resource(ResourceArn=cluster_arn, Tags=dict(tags))

    # -- metrics -----------------------------------------------------------------------------------------------------

    def metric_dimension_values(self, metric_name: str, cluster_name: str, dimension: str) -> list[str]:
        """Values of ``dimension`` among the cluster's metrics named ``metric_name`` (ListMetrics, all pages)."""
        paginator = self.cloudwatch.get_paginator("list_metrics")
        pages = paginator.paginate(
            Namespace=NAMESPACE,
            MetricName=metric_name,
            Dimensions=[{"Name": CLUSTER_DIMENSION, "Value": cluster_name}],
        )
        values = set()
        for page in pages:
            for metric in page.get("Metrics", []):
                found = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
                if dimension in found:
                    values.add(found[dimension])
        return sorted(values)

    def broker_cpu(
        self, cluster_name: str, broker_ids: Sequence[str], *, start: datetime, end: datetime, period_seconds: int
    ) -> dict[str, list[tuple[float, float]]]:
        """Per broker, CpuUser + CpuSystem (Average per period) as ``[(epoch, percent)]``, oldest first."""
        keys = [(broker, metric) for broker in broker_ids for metric in CPU_METRICS]
        series = self._series(
            keys,
            lambda key: {
                "MetricName": key[1],
                "Dimensions": [
                    {"Name": CLUSTER_DIMENSION, "Value": cluster_name},
                    {"Name": BROKER_DIMENSION, "Value": key[0]},
                ],
            },
            label=lambda key: f"{key[1]} broker {key[0]}",
            start=start,
            end=end,
            period_seconds=period_seconds,
        )
        return {broker: _sum_series(series[(broker, m)] for m in CPU_METRICS) for broker in broker_ids}

    def topic_bytes_in(
        self,
        cluster_name: str,
        topics: Sequence[str],
        broker_ids: Sequence[str],
        *,
        start: datetime,
        end: datetime,
        period_seconds: int,
    ) -> dict[str, list[tuple[float, float]]]:
        """Per topic, BytesInPerSec summed over brokers (enhanced monitoring PER_TOPIC_PER_BROKER), ``[(epoch, B/s)]``."""
        keys = [(topic, broker) for topic in topics for broker in broker_ids]
        series = self._series(
            keys,
            lambda key: {
                "MetricName": TOPIC_METRIC,
                "Dimensions": [
                    {"Name": CLUSTER_DIMENSION, "Value": cluster_name},
                    {"Name": BROKER_DIMENSION, "Value": key[1]},
                    {"Name": TOPIC_DIMENSION, "Value": key[0]},
                ],
            },
            label=lambda key: f"{key[0][:200]} broker {key[1]}",
            start=start,
            end=end,
            period_seconds=period_seconds,
        )
        return {topic: _sum_series(series[(topic, b)] for b in broker_ids) for topic in topics}

    def _series(
        self,
        keys: Sequence[Any],
        metric: Any,
        *,
        label: Any,
        start: datetime,
        end: datetime,
        period_seconds: int,
    ) -> dict[Any, list[tuple[float, float]]]:
        """GetMetricData for one Average series per key, in calls within both per-call limits, all pages."""
        now = datetime.now(UTC)
        per_call = msk_contracts.max_queries_per_call(start=start, end=end, period_seconds=period_seconds)
        found: dict[Any, list[tuple[float, float]]] = {key: [] for key in keys}
        for offset in range(0, len(keys), per_call):
            chunk = keys[offset : offset + per_call]
            queries = [
                {
                    # The Id must match ^[a-z][a-zA-Z0-9_]*$: an index, never the (outside) topic name.
                    "Id": f"m{index}",
                    "Label": label(key),
                    "MetricStat": {
                        "Metric": {"Namespace": NAMESPACE, **metric(key)},
                        "Period": period_seconds,
                        "Stat": "Average",
                    },
                    "ReturnData": True,
                }
                for index, key in enumerate(chunk)
            ]
            msk_contracts.check_get_metric_data(queries, start=start, end=end, now=now)
            by_id = {f"m{index}": key for index, key in enumerate(chunk)}
            kwargs: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end}
            while True:
                response = self.cloudwatch.get_metric_data(**kwargs)
                for result in response["MetricDataResults"]:
                    found[by_id[result["Id"]]].extend(
                        (stamp.timestamp(), float(value))
                        for stamp, value in zip(result["Timestamps"], result["Values"], strict=True)
                    )
                token = response.get("NextToken")
                if not token:
                    break
                kwargs["NextToken"] = token
        return found


def _sum_series(series: Iterable[list[tuple[float, float]]]) -> list[tuple[float, float]]:
    """Point-wise sum by timestamp (CpuUser + CpuSystem; a topic over its brokers), oldest first."""
    totals: dict[float, float] = defaultdict(float)
    for points in series:
        for stamp, value in points:
            totals[stamp] += value
    return sorted(totals.items())
