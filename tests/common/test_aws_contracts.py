"""Contract tests: each documented AWS request constraint Toilless relies on, checked without moto (moto ignores them)."""

from __future__ import annotations

import pytest

from toilless.common import aws_contracts as contracts
from toilless.common.aws_contracts import AwsContractError


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param(
            "toilless:storage-guard-last-change", "2026-12-01T10:00:00+00:00 from=100 to=130 run=x", id="marker"
        ),
        pytest.param("team", "", id="empty-value"),
        pytest.param("k", "v" * 256, id="value-256"),
        pytest.param("k" * 128, "v", id="key-128"),
        pytest.param("owner", "sre@example.com /a=b+c-d_e.f:g", id="every-allowed-punctuation"),
        pytest.param("équipe", "données 数据 ١٢٣", id="unicode-letters-and-digits"),
        pytest.param("note", "space and\u00a0no-break\u2003em", id="white-space-separators"),
    ],
)
def test_rds_tag_accepted(key: str, value: str) -> None:
    contracts.check_rds_tag(key, value)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        pytest.param("m", "100->130", "'>'", id="arrow-the-issue-10-marker"),
        pytest.param("m", "a,b", "','", id="comma"),
        pytest.param("m", "x#y", "'#'", id="hash"),
        pytest.param("m", "{json}", "'{}'", id="braces"),
        pytest.param("m", "ok ✓", "'✓'", id="symbol-not-letter"),
        # The documented regex is \p{Z} (separators): a tab or newline is a control character, not \p{Z}.
        pytest.param("m", "a\tb", "holds", id="tab"),
        pytest.param("m", "a\nb", "holds", id="newline"),
        pytest.param("m", "v" * 257, "0-256 characters", id="value-257"),
        pytest.param("k" * 129, "v", "1-128 characters", id="key-129"),
        pytest.param("", "v", "1-128 characters", id="empty-key"),
        pytest.param("aws:owner", "v", "may not start with 'aws:'", id="key-aws-prefix"),
        pytest.param("RDS:owner", "v", "may not start with 'rds:'", id="key-rds-prefix-any-case"),
        pytest.param("k", "aws:value", "may not start with 'aws:'", id="value-aws-prefix"),
    ],
)
def test_rds_tag_refused(key: str, value: str, message: str) -> None:
    with pytest.raises(AwsContractError, match=message.replace("(", r"\(").replace(")", r"\)")):
        contracts.check_rds_tag(key, value)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("manual__2026-12-01T10:00:00.123+00:00", id="airflow-run-id"),
        pytest.param("a<b>c&d|e;f,g#h", id="forbidden-ascii"),
        pytest.param("aws:rds:x", id="reserved-prefix"),
        pytest.param("x" * 1000, id="too-long"),
        pytest.param("🚀✓", id="symbols"),
    ],
)
def test_tag_safe_always_yields_a_valid_value(text: str) -> None:
    safe = contracts.tag_safe(text)
    contracts.check_rds_tag("k", safe)
    assert len(safe) <= 256


@pytest.mark.parametrize(
    "identifier",
    [
        pytest.param("orders-db", id="plain"),
        pytest.param("a", id="one-letter"),
        pytest.param("A1-b2-C3", id="mixed-case-digits"),
        pytest.param("a" * 63, id="63-characters"),
    ],
)
def test_db_instance_identifier_accepted(identifier: str) -> None:
    contracts.check_db_instance_identifier(identifier)


@pytest.mark.parametrize(
    ("identifier", "message"),
    [
        pytest.param("", "non-empty", id="empty"),
        pytest.param("a" * 64, "longer than 63", id="64-characters"),
        pytest.param("1orders", "start with a letter", id="digit-first"),
        pytest.param("-orders", "start with a letter", id="hyphen-first"),
        pytest.param("orders-", "end with a hyphen", id="trailing-hyphen"),
        pytest.param("orders--db", "two consecutive hyphens", id="double-hyphen"),
        pytest.param("orders_db", "only ASCII letters", id="underscore"),
        pytest.param("orders.db", "only ASCII letters", id="dot"),
        pytest.param("ördérs", "only ASCII letters", id="non-ascii-letter"),
        pytest.param("orders db", "only ASCII letters", id="space"),
        pytest.param(None, "non-empty", id="none"),
    ],
)
def test_db_instance_identifier_refused(identifier, message: str) -> None:
    with pytest.raises(AwsContractError, match=message):
        contracts.check_db_instance_identifier(identifier)


@pytest.mark.parametrize(
    ("request_", "storage_type", "message"),
    [
        pytest.param({"DBInstanceIdentifier": "db", "AllocatedStorage": 130.5}, "gp3", "integer", id="fractional-gib"),
        pytest.param({"DBInstanceIdentifier": "db", "AllocatedStorage": True}, "gp3", "integer", id="bool-gib"),
        pytest.param({"DBInstanceIdentifier": "db", "AllocatedStorage": 0}, "gp3", "outside 1-65536", id="zero"),
        pytest.param({"DBInstanceIdentifier": "db", "AllocatedStorage": 65537}, "gp3", "outside 1-65536", id="gp3-max"),
        pytest.param(
            {"DBInstanceIdentifier": "db", "AllocatedStorage": 3073}, "standard", "outside 1-3072", id="magnetic-max"
        ),
        pytest.param(
            {"DBInstanceIdentifier": "db", "AllocatedStorage": 61_543_424}, None, "outside", id="issue-10-60100-tib"
        ),
        pytest.param(
            {"DBInstanceIdentifier": "db", "AllocatedStorage": 200, "MaxAllocatedStorage": 150},
            "gp3",
            "below AllocatedStorage",
            id="limit-below-allocation",
        ),
        pytest.param({"DBInstanceIdentifier": "db--x", "AllocatedStorage": 200}, "gp3", "consecutive", id="bad-id"),
        pytest.param(
            {"DBInstanceIdentifier": "db", "AllocatedStorage": 200, "ApplyImmediately": "yes"},
            "gp3",
            "boolean",
            id="apply-immediately-string",
        ),
    ],
)
def test_modify_db_instance_refused(request_, storage_type, message: str) -> None:
    with pytest.raises(AwsContractError, match=message):
        contracts.check_modify_db_instance(request_, storage_type=storage_type)


def test_modify_db_instance_accepted() -> None:
    contracts.check_modify_db_instance(
        {
            "DBInstanceIdentifier": "orders-db",
            "AllocatedStorage": 144,
            "MaxAllocatedStorage": 200,
            "ApplyImmediately": True,
        },
        storage_type="gp3",
    )


@pytest.mark.parametrize(
    ("values", "ok"),
    [
        pytest.param(["a", "b"], True, id="two"),
        pytest.param([f"db{i}" for i in range(100)], True, id="hundred"),
        pytest.param([f"db{i}" for i in range(101)], False, id="hundred-and-one"),
        pytest.param([], False, id="none"),
        pytest.param(["bad_id"], False, id="bad-identifier"),
    ],
)
def test_instance_filter(values, ok: bool) -> None:
    if ok:
        contracts.check_instance_filter(values)
    else:
        with pytest.raises(AwsContractError):
            contracts.check_instance_filter(values)


@pytest.mark.parametrize(
    ("duration", "ok"),
    [
        pytest.param(1, True, id="one-minute"),
        pytest.param(20160, True, id="fourteen-days"),
        pytest.param(20161, False, id="past-retention"),
        pytest.param(0, False, id="zero"),
        pytest.param(60.0, False, id="float"),
    ],
)
def test_describe_events_duration(duration, ok: bool) -> None:
    if ok:
        contracts.check_describe_events("orders-db", duration)
    else:
        with pytest.raises(AwsContractError):
            contracts.check_describe_events("orders-db", duration)


def _query(query_id: str = "free0", value: str = "orders-db", period: int = 3600) -> dict:
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {
                "Namespace": "AWS/RDS",
                "MetricName": "FreeStorageSpace",
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": value}],
            },
            "Period": period,
            "Stat": "Minimum",
        },
    }


@pytest.mark.parametrize(
    ("queries", "message"),
    [
        pytest.param([_query("Free0")], "lowercase letter", id="id-uppercase-first"),
        pytest.param([_query("0free")], "lowercase letter", id="id-digit-first"),
        pytest.param([_query("free-0")], "lowercase letter", id="id-hyphen"),
        pytest.param([_query("f" * 256)], "lowercase letter", id="id-256"),
        pytest.param([_query(), _query()], "used twice", id="duplicate-id"),
        pytest.param([_query(value="")], "1-1024", id="empty-dimension"),
        pytest.param([_query(value="v" * 1025)], "1-1024", id="dimension-1025"),
        pytest.param([_query(period=90)], "multiple of 60", id="period-90"),
        pytest.param([_query(period=0)], "positive", id="period-0"),
        pytest.param([_query(f"q{i}") for i in range(501)], "1-500", id="501-queries"),
        pytest.param([], "1-500", id="no-query"),
    ],
)
def test_metric_data_queries_refused(queries, message: str) -> None:
    with pytest.raises(AwsContractError, match=message):
        contracts.check_metric_data_queries(queries)


def test_metric_data_queries_accepted() -> None:
    contracts.check_metric_data_queries(
        [_query(f"free{i}", period=p) for i, p in enumerate((1, 5, 10, 20, 30, 60, 300))]
    )
