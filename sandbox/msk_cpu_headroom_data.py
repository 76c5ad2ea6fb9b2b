"""MSK demo data: CloudWatch ``AWS/Kafka`` metrics for a cluster's brokers and topics, as MSK publishes them.

Used by the sandbox seeder (sandbox/services/msk_cpu_headroom.py), the msk_cpu_headroom tests and its benchmark.
Every timestamp is relative to ``now``: the last hour at one-minute resolution, the 7 days before at one point an
hour. CPU is split 70/30 into CpuUser and CpuSystem (the SOP adds them again).

Profiles (used % of a broker, ``hours_ago`` -> percent):
* ``healthy``: 30% all week;
* ``spike``: 35% all week, 85% in the last hour;
* ``steady_rise``: from 40% seven days ago to 75% now, linearly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

NAMESPACE = "AWS/Kafka"
WEEK_HOURS = 7 * 24
_PUT_BATCH = 500


def healthy(hours_ago: float) -> float:
    return 30.0


def spike(hours_ago: float) -> float:
    return 85.0 if hours_ago < 1 else 35.0


def steady_rise(hours_ago: float) -> float:
    return 75.0 - 35.0 * hours_ago / WEEK_HOURS


PROFILES: dict[str, Callable[[float], float]] = {"healthy": healthy, "spike": spike, "steady_rise": steady_rise}


def sample_hours(*, now: datetime) -> list[tuple[datetime, float]]:
    """(time, hours ago): every minute of the last hour, then every hour back to 7 days."""
    recent = [(now - timedelta(minutes=m), m / 60.0) for m in range(1, 60)]
    older = [(now - timedelta(hours=h), float(h)) for h in range(1, WEEK_HOURS + 1)]
    return recent + older


def cluster_metrics(
    cluster_name: str,
    *,
    brokers: int,
    cpu: Callable[[float], float],
    topics: Mapping[str, Callable[[float], float]] | None = None,
    now: datetime,
) -> list[dict[str, Any]]:
    """PutMetricData ``MetricData`` entries: CpuUser/CpuSystem per broker, BytesInPerSec per topic per broker
    (each broker carries an equal share of a topic's bytes/s)."""
    data: list[dict[str, Any]] = []
    for stamp, hours_ago in sample_hours(now=now):
        for broker in range(1, brokers + 1):
            dims = [{"Name": "Cluster Name", "Value": cluster_name}, {"Name": "Broker ID", "Value": str(broker)}]
            used = cpu(hours_ago)
            data.append({"MetricName": "CpuUser", "Dimensions": dims, "Timestamp": stamp, "Value": used * 0.7})
            data.append({"MetricName": "CpuSystem", "Dimensions": dims, "Timestamp": stamp, "Value": used * 0.3})
            for topic, rate in (topics or {}).items():
                data.append(
                    {
                        "MetricName": "BytesInPerSec",
                        "Dimensions": [*dims, {"Name": "Topic", "Value": topic}],
                        "Timestamp": stamp,
                        "Value": rate(hours_ago) / brokers,
                    }
                )
    return data


def seed_cluster_metrics(
    cloudwatch: Any,
    cluster_name: str,
    *,
    brokers: int = 3,
    profile: str = "healthy",
    topics: Mapping[str, Callable[[float], float]] | None = None,
    now: datetime | None = None,
) -> int:
    """Put a cluster's metrics into CloudWatch (moto); returns how many data points."""
    data = cluster_metrics(
        cluster_name, brokers=brokers, cpu=PROFILES[profile], topics=topics, now=now or datetime.now(UTC)
    )
    for offset in range(0, len(data), _PUT_BATCH):
        cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data[offset : offset + _PUT_BATCH])
    return len(data)


def flat(bytes_per_s: float) -> Callable[[float], float]:
    return lambda hours_ago: bytes_per_s


def jump(before: float, last_hour: float) -> Callable[[float], float]:
    return lambda hours_ago: last_hour if hours_ago < 1 else before


def cluster_arn(cluster_name: str, *, region: str = "eu-central-1", account: str = "123456789012") -> str:
    """A real-format MSK cluster ARN for demo clusters (MSK: cluster/<name>/<uuid>-<n>)."""
    return f"arn:aws:kafka:{region}:{account}:cluster/{cluster_name}/6357e0b2-0e6a-4b86-a0b4-70df934c2e31-3"


def describe_cluster_response(
    arn: str,
    cluster_name: str,
    *,
    instance_type: str = "kafka.m5.large",
    state: str = "ACTIVE",
    brokers: int = 3,
    current_version: str = "K3AEGXETSR30VB",
    tags: Mapping[str, str] | None = None,
    enhanced_monitoring: str = "PER_TOPIC_PER_BROKER",
) -> dict[str, Any]:
    """A DescribeClusterV2 answer in the real response shape (for botocore's Stubber and the sandbox's stand-in)."""
    return {
        "ClusterInfo": {
            "ClusterArn": arn,
            "ClusterName": cluster_name,
            "ClusterType": "PROVISIONED",
            "State": state,
            "CurrentVersion": current_version,
            "Tags": dict(tags or {}),
            "Provisioned": {
                "BrokerNodeGroupInfo": {"InstanceType": instance_type, "ClientSubnets": ["subnet-0a1b2c3d"]},
                "NumberOfBrokerNodes": brokers,
                "EnhancedMonitoring": enhanced_monitoring,
            },
        }
    }
