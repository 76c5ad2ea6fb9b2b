"""The documented request contracts of the Amazon MSK (``kafka``) and CloudWatch calls of ``msk_cpu_headroom``.

Checked where each request is built, right before the call: moto and botocore accept values the real APIs refuse or
answer with nothing (a 90-second Period for data older than three hours returns no data points, silently). A value
that breaks a contract raises :class:`~toilless.common.aws_contracts.AwsContractError` (bad input, never retried).

Sources (AWS API references and the botocore service models):

* MSK cluster ARN (``ClusterArn`` of DescribeClusterV2, UpdateBrokerType, TagResource):
  ``arn:<partition>:kafka:<region>:<12-digit account>:cluster/<cluster name>/<cluster uuid>-<n>``; the cluster name is
  1-64 letters, digits and hyphens starting with a letter or digit (CreateCluster ``ClusterName``).
* UpdateBrokerType: ``ClusterArn``, ``CurrentVersion`` (the cluster's current version from DescribeCluster(V2), an
  opaque token such as ``K3AEGXETSR30VB``) and ``TargetInstanceType`` (a ``kafka.<family>.<size>`` broker type), all
  required. Which types a cluster may move to is decided by configuration: :func:`check_target_instance_type`.
* MSK tags (TagResource): same rules as other AWS tags: key 1-128, value 0-256, letters, digits, white space and
  ``_ . : / = + - @``, no ``aws:`` prefix.
* CloudWatch GetMetricData: 1-500 ``MetricDataQuery`` per call; ``Id`` ``^[a-z][a-zA-Z0-9_]*$`` (1-255), unique in a
  call; ``Namespace`` and ``MetricName`` 1-255; at most 30 dimensions, name 1-255 and value 1-1024 ASCII characters;
  ``Period`` 1, 5, 10, 20, 30, 60 or a multiple of 60 seconds, and for data older than 3 hours a multiple of 60, older
  than 15 days a multiple of 300, older than 63 days a multiple of 3600 (otherwise no data points come back);
  ``StartTime`` before ``EndTime``; at most 100,800 data points per call. ``Label`` has no length limit in the API
  reference; ours are capped at :data:`LABEL_MAX` so a hostile topic name cannot blow up a request.

Pure: no Airflow, no boto3.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from toilless.common.aws_contracts import AwsContractError, check_metric_data_queries, tag_text_problem

_PARTITIONS = "aws|aws-cn|aws-us-gov"
CLUSTER_NAME_MAX = 64
_CLUSTER_ARN = re.compile(
    rf"^arn:(?:{_PARTITIONS}):kafka:[a-z]{{2}}(?:-[a-z]+)+-\d:\d{{12}}:cluster/"
    r"(?P<name>[A-Za-z0-9][A-Za-z0-9-]{0,63})/"
    r"(?P<uuid>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-\d{1,3})$"
)
_CURRENT_VERSION = re.compile(r"^[A-Za-z0-9]{1,64}\Z")
_INSTANCE_TYPE = re.compile(r"^kafka\.[a-z][a-z0-9]*\.[a-z0-9]+\Z")

METRIC_QUERIES_MAX = 500
DATAPOINTS_PER_CALL_MAX = 100_800
NAME_MAX = 255
DIMENSIONS_MAX = 30
LABEL_MAX = 255
#: (data older than this, Period must be a multiple of) from the GetMetricData / MetricStat reference.
_RETENTION_STEPS = ((timedelta(days=63), 3600), (timedelta(days=15), 300), (timedelta(hours=3), 60))


def cluster_name_from_arn(arn: str) -> str:
    """The cluster name inside a valid MSK cluster ARN (checked first)."""
    check_cluster_arn(arn)
    match = _CLUSTER_ARN.fullmatch(arn)
    assert match is not None
    return match.group("name")


def check_cluster_arn(arn: Any, *, parameter: str = "ClusterArn") -> None:
    """An MSK provisioned cluster ARN in the documented format."""
    if not isinstance(arn, str) or not arn:
        raise AwsContractError(f"{parameter} must be a non-empty string, got {arn!r}")
    if len(arn) > 2048 or not _CLUSTER_ARN.fullmatch(arn):
        raise AwsContractError(
            f"{parameter} {arn[:120]!r} is not an MSK cluster ARN "
            "(arn:aws:kafka:<region>:<account>:cluster/<name>/<uuid>-<n>)"
        )


def check_target_instance_type(instance_type: Any, allowed: Iterable[str]) -> None:
    """A ``TargetInstanceType`` in the broker-type format and in the configured allowed list."""
    if not isinstance(instance_type, str) or not _INSTANCE_TYPE.fullmatch(instance_type):
        raise AwsContractError(f"TargetInstanceType {instance_type!r} is not a broker type like kafka.m5.xlarge")
    allowed = list(allowed)
    if instance_type not in allowed:
        raise AwsContractError(f"TargetInstanceType {instance_type} is not in the allowed list: {', '.join(allowed)}")


def check_update_broker_type(request: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """An UpdateBrokerType request as the SOP builds it."""
    if set(request) != {"ClusterArn", "CurrentVersion", "TargetInstanceType"}:
        raise AwsContractError(
            f"UpdateBrokerType takes ClusterArn, CurrentVersion, TargetInstanceType; got {sorted(request)}"
        )
    check_cluster_arn(request["ClusterArn"])
    version = request["CurrentVersion"]
    if not isinstance(version, str) or not _CURRENT_VERSION.fullmatch(version):
        raise AwsContractError(f"CurrentVersion {version!r} is not a cluster version token from DescribeCluster")
    check_target_instance_type(request["TargetInstanceType"], allowed)


def check_msk_tags(tags: Mapping[str, str]) -> None:
    """TagResource ``Tags`` (a map of key to value)."""
    for key, value in tags.items():
        problem = tag_text_problem(key, what="tag key", max_length=128, min_length=1) or tag_text_problem(
            value, what=f"value of tag {key!r}", max_length=256, min_length=0
        )
        if problem:
            raise AwsContractError(f"TagResource: {problem}")


def check_get_metric_data(
    queries: Sequence[Mapping[str, Any]], *, start: datetime, end: datetime, now: datetime
) -> None:
    """A whole GetMetricData request: the queries (count, ids, dimensions, periods), labels, and the time range."""
    check_metric_data_queries(queries)
    if start.tzinfo is None or end.tzinfo is None:
        raise AwsContractError("GetMetricData StartTime and EndTime must be timezone-aware")
    if start >= end:
        raise AwsContractError(f"GetMetricData StartTime {start.isoformat()} must be before EndTime {end.isoformat()}")
    age = now - start
    datapoints = 0
    for query in queries:
        label = query.get("Label")
        if label is not None and (not isinstance(label, str) or len(label) > LABEL_MAX):
            raise AwsContractError(f"MetricDataQuery {query.get('Id')} Label must be a string of at most {LABEL_MAX}")
        stat = query.get("MetricStat")
        if not stat:
            continue
        metric = stat.get("Metric") or {}
        for field in ("Namespace", "MetricName"):
            value = metric.get(field)
            if not isinstance(value, str) or not 1 <= len(value) <= NAME_MAX:
                raise AwsContractError(f"MetricDataQuery {query.get('Id')} {field} must be 1-{NAME_MAX} characters")
        dimensions = metric.get("Dimensions") or []
        if len(dimensions) > DIMENSIONS_MAX:
            raise AwsContractError(f"a metric takes at most {DIMENSIONS_MAX} dimensions, got {len(dimensions)}")
        for dimension in dimensions:
            name, value = dimension.get("Name"), dimension.get("Value")
            if not isinstance(name, str) or not 1 <= len(name) <= NAME_MAX or not name.isascii():
                raise AwsContractError(f"dimension name {name!r} must be 1-{NAME_MAX} ASCII characters")
            if not isinstance(value, str) or not value.isascii() or not value.strip():
                raise AwsContractError(f"dimension {name!r} value must be ASCII with a non-space character")
        period = int(stat["Period"])
        for older_than, multiple in _RETENTION_STEPS:
            if age > older_than and period % multiple:
                raise AwsContractError(
                    f"Period {period} s: data older than {older_than} needs a multiple of {multiple} s "
                    "(CloudWatch returns no data points otherwise)"
                )
        datapoints += int((end - start).total_seconds() // period) + 1
    if datapoints > DATAPOINTS_PER_CALL_MAX:
        raise AwsContractError(
            f"GetMetricData would return up to {datapoints:,} data points; one call returns at most "
            f"{DATAPOINTS_PER_CALL_MAX:,}: fewer queries per call or a longer period"
        )


def max_queries_per_call(*, start: datetime, end: datetime, period_seconds: int) -> int:
    """How many single-metric queries of this range and period fit one GetMetricData call (both limits)."""
    per_query = int((end - start).total_seconds() // period_seconds) + 1
    return max(1, min(METRIC_QUERIES_MAX, DATAPOINTS_PER_CALL_MAX // per_query))
