"""Every value msk_cpu_headroom sends to MSK and CloudWatch, checked against the API references
(toilless.common.msk_contracts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sandbox.msk_cpu_headroom_data import cluster_arn
from toilless.common import msk_contracts
from toilless.common.aws_contracts import AwsContractError

ARN = cluster_arn("orders-kafka")
ALLOWED = ["kafka.m5.large", "kafka.m5.xlarge"]


@pytest.mark.parametrize(
    "arn",
    [
        pytest.param(ARN, id="real-format"),
        pytest.param(cluster_arn("a", region="us-gov-west-1").replace(":aws:", ":aws-us-gov:"), id="govcloud"),
    ],
)
def test_valid_cluster_arns(arn: str) -> None:
    msk_contracts.check_cluster_arn(arn)


@pytest.mark.parametrize(
    "arn",
    [
        pytest.param("", id="empty"),
        pytest.param(None, id="none"),
        pytest.param(
            "arn:aws:kafka:eu-central-1:123456789012:cluster/6357e0b2-0e6a-4b86-a0b4-70df934c2e31",
            id="moto-style-no-name",
        ),
        pytest.param(ARN.replace(":kafka:", ":rds:"), id="other-service"),
        pytest.param(ARN.replace("123456789012", "1234"), id="short-account"),
        pytest.param(ARN.replace("orders-kafka", "orders_kafka"), id="underscore-in-name"),
        pytest.param(ARN.replace("orders-kafka", "x" * 65), id="name-too-long"),
        pytest.param(ARN + "\n", id="trailing-newline"),
        pytest.param(ARN.replace("cluster/", "topic/"), id="topic-arn"),
    ],
)
def test_invalid_cluster_arns(arn: Any) -> None:
    with pytest.raises(AwsContractError):
        msk_contracts.check_cluster_arn(arn)


def test_cluster_name_from_arn() -> None:
    assert msk_contracts.cluster_name_from_arn(ARN) == "orders-kafka"


@pytest.mark.parametrize(
    ("request_", "ok"),
    [
        pytest.param(
            {"ClusterArn": ARN, "CurrentVersion": "K3AEGXETSR30VB", "TargetInstanceType": "kafka.m5.xlarge"},
            True,
            id="ok",
        ),
        pytest.param(
            {"ClusterArn": ARN, "CurrentVersion": "K3AEGXETSR30VB", "TargetInstanceType": "kafka.m5.4xlarge"},
            False,
            id="not-allowed",
        ),
        pytest.param(
            {"ClusterArn": ARN, "CurrentVersion": "K3AEGXETSR30VB", "TargetInstanceType": "m5.xlarge"},
            False,
            id="bad-type-format",
        ),
        pytest.param(
            {"ClusterArn": ARN, "CurrentVersion": "", "TargetInstanceType": "kafka.m5.xlarge"},
            False,
            id="empty-version",
        ),
        pytest.param(
            {"ClusterArn": ARN, "CurrentVersion": "v 1", "TargetInstanceType": "kafka.m5.xlarge"},
            False,
            id="bad-version",
        ),
        pytest.param({"ClusterArn": ARN, "TargetInstanceType": "kafka.m5.xlarge"}, False, id="missing-version"),
        pytest.param(
            {"ClusterArn": "x", "CurrentVersion": "K3", "TargetInstanceType": "kafka.m5.xlarge"}, False, id="bad-arn"
        ),
    ],
)
def test_update_broker_type_request(request_: dict[str, Any], ok: bool) -> None:
    if ok:
        msk_contracts.check_update_broker_type(request_, ALLOWED)
    else:
        with pytest.raises(AwsContractError):
            msk_contracts.check_update_broker_type(request_, ALLOWED)


def test_tags() -> None:
    msk_contracts.check_msk_tags({"toilless:msk-resize-last": "2026-01-01T00:00:00+00:00 from=a to=b incident=x@y"})
    for bad in ({"aws:x": "1"}, {"k": "<script>"}, {"k": "x" * 257}, {"": "v"}):
        with pytest.raises(AwsContractError):
            msk_contracts.check_msk_tags(bad)


NOW = datetime.now(UTC)


def query(index: int = 0, *, period: int = 60, label: Any = "CpuUser broker 1", **metric: Any) -> dict[str, Any]:
    return {
        "Id": f"m{index}",
        "Label": label,
        "MetricStat": {
            "Metric": {
                "Namespace": "AWS/Kafka",
                "MetricName": "CpuUser",
                "Dimensions": [{"Name": "Cluster Name", "Value": "demo"}, {"Name": "Broker ID", "Value": "1"}],
                **metric,
            },
            "Period": period,
            "Stat": "Average",
        },
        "ReturnData": True,
    }


HOUR = (NOW - timedelta(hours=1), NOW)
WEEK = (NOW - timedelta(days=7), NOW)


@pytest.mark.parametrize(
    ("queries", "window"),
    [
        pytest.param([query()], HOUR, id="hour-per-minute"),
        pytest.param([query(period=3600)], WEEK, id="week-per-hour"),
        pytest.param([query(i, period=3600) for i in range(500)], WEEK, id="500-queries"),
        pytest.param([query(period=10)], (NOW - timedelta(hours=2), NOW), id="high-resolution-recent"),
    ],
)
def test_valid_metric_requests(queries: list[dict[str, Any]], window: tuple[datetime, datetime]) -> None:
    msk_contracts.check_get_metric_data(queries, start=window[0], end=window[1], now=NOW)


@pytest.mark.parametrize(
    ("queries", "window", "message"),
    [
        pytest.param([query(i, period=3600) for i in range(501)], WEEK, "1-500", id="501-queries"),
        pytest.param([], WEEK, "1-500", id="no-query"),
        pytest.param([{**query(), "Id": "M0"}], HOUR, "lowercase", id="id-uppercase-first"),
        pytest.param([{**query(), "Id": "m-0"}], HOUR, "lowercase", id="id-hyphen"),
        pytest.param([query(), query()], HOUR, "twice", id="duplicate-id"),
        pytest.param([query(period=90)], HOUR, "multiple of 60", id="period-90"),
        pytest.param([query(period=30)], WEEK, "older than 3:00:00", id="high-resolution-too-old"),
        pytest.param([query(period=60)], (NOW - timedelta(days=20), NOW), "multiple of 300", id="per-minute-20-days"),
        pytest.param([query(period=300)], (NOW - timedelta(days=70), NOW), "multiple of 3600", id="5-min-70-days"),
        pytest.param([query()], (NOW, NOW - timedelta(hours=1)), "before EndTime", id="reversed-range"),
        pytest.param([query(label="x" * 256)], HOUR, "Label", id="label-too-long"),
        pytest.param([query(MetricName="")], HOUR, "MetricName", id="empty-metric-name"),
        pytest.param(
            [query(Dimensions=[{"Name": f"d{i}", "Value": "v"} for i in range(31)])], HOUR, "30", id="31-dimensions"
        ),
        pytest.param(
            [query(Dimensions=[{"Name": "Topic", "Value": "caf\u00e9"}])], HOUR, "ASCII", id="non-ascii-dimension"
        ),
        pytest.param(
            [query(i, period=60) for i in range(11)], (NOW - timedelta(days=7), NOW), "100,800", id="too-many-points"
        ),
    ],
)
def test_invalid_metric_requests(
    queries: list[dict[str, Any]], window: tuple[datetime, datetime], message: str
) -> None:
    with pytest.raises(AwsContractError, match=message):
        msk_contracts.check_get_metric_data(queries, start=window[0], end=window[1], now=NOW)


def test_queries_per_call_respect_both_limits() -> None:
    assert msk_contracts.max_queries_per_call(start=HOUR[0], end=HOUR[1], period_seconds=60) == 500
    per_call = msk_contracts.max_queries_per_call(start=WEEK[0], end=WEEK[1], period_seconds=60)
    assert per_call * (7 * 24 * 60 + 1) <= 100_800 < (per_call + 1) * (7 * 24 * 60 + 1)
