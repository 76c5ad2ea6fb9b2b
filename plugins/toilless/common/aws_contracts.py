"""The documented request contracts of the AWS APIs Toilless calls, checked where each request is built.

moto accepts values real AWS refuses (a tag value with ``>`` is stored by moto and answered with 400
``InvalidParameterValue`` by RDS), so a green test against moto proves nothing about these constraints. Every value
Toilless sends to an AWS API goes through one of the checks below right before the call; a value that breaks a
contract raises :class:`AwsContractError` (a ``ValueError``: bad input, never retried) naming the parameter and the rule.

Sources (AWS API references):

* RDS ``Tag`` (AddTagsToResource): key 1-128 Unicode characters, value 0-256, both only Unicode letters, digits,
  white space and ``_ . : / = + - @`` (Java regex ``^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$``), neither prefixed with
  ``aws:`` or ``rds:``.
* RDS ``DBInstanceIdentifier`` (ModifyDBInstance, DescribeDBInstances filter ``db-instance-id``,
  DescribeEvents ``SourceIdentifier``): 1-63 letters, digits or hyphens; first character a letter; no hyphen at the
  end and no two consecutive hyphens.
* RDS ``AllocatedStorage`` / ``MaxAllocatedStorage`` (ModifyDBInstance): integers in GiB; the maximum per storage
  type is 65,536 GiB (gp2, gp3, io1, io2) and 3,072 GiB (magnetic ``standard``); MaxAllocatedStorage must be at least
  10% above AllocatedStorage (checked by the decision, which owns that rule).
* RDS ``DescribeEvents``: ``Duration`` in minutes; RDS keeps events for 14 days (20,160 minutes).
* RDS ``DescribeDBInstances`` ``Filters``: at most 100 values per filter.
* CloudWatch ``GetMetricData``: at most 500 ``MetricDataQuery`` per call; ``Id`` starts with a lowercase letter and
  holds only letters, digits and underscores (at most 255 characters), unique within the call; ``Dimension`` value
  1-1024 characters; ``Period`` 1, 5, 10, 20, 30, 60 or a multiple of 60 seconds.

Pure: no Airflow, no boto3.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from toilless.common.errors import InvalidInput

TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
TAG_RESERVED_PREFIXES = ("aws:", "rds:")
#: Punctuation RDS allows in tag keys and values besides letters (\p{L}), separators (\p{Z}) and digits (\p{N}).
TAG_PUNCTUATION = frozenset("_.:/=+-@")

DB_INSTANCE_ID_MAX = 63
_DB_INSTANCE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9-]*\Z")

STORAGE_MAX_GIB = {"gp2": 65536, "gp3": 65536, "io1": 65536, "io2": 65536, "standard": 3072}
EVENTS_MAX_DURATION_MINUTES = 14 * 24 * 60
FILTER_MAX_VALUES = 100

METRIC_QUERIES_MAX = 500
METRIC_QUERY_ID_MAX = 255
_METRIC_QUERY_ID = re.compile(r"^[a-z][A-Za-z0-9_]*\Z")
DIMENSION_VALUE_MAX = 1024
_HIGH_RESOLUTION_PERIODS = frozenset({1, 5, 10, 20, 30})


class AwsContractError(InvalidInput):
    """A value Toilless was about to send breaks the AWS API's documented contract."""


def _tag_character_allowed(char: str) -> bool:
    # \p{L} letters, \p{Z} separators (white space), \p{N} numbers: Unicode general categories L*, Z*, N*.
    return unicodedata.category(char)[0] in "LZN" or char in TAG_PUNCTUATION


def tag_text_problem(text: str, *, what: str, max_length: int, min_length: int) -> str | None:
    """Why ``text`` cannot be an RDS tag key/value, or None if it can."""
    if not isinstance(text, str):
        return f"{what} must be a string, got {type(text).__name__}"
    if not min_length <= len(text) <= max_length:
        return f"{what} must be {min_length}-{max_length} characters, got {len(text)}"
    lowered = text.lower()
    for prefix in TAG_RESERVED_PREFIXES:
        if lowered.startswith(prefix):
            return f"{what} {text[:40]!r} may not start with {prefix!r}"
    bad = sorted({char for char in text if not _tag_character_allowed(char)})
    if bad:
        return (
            f"{what} {text[:60]!r} holds {''.join(bad)!r}: RDS tags allow only Unicode letters, digits, "
            "white space and _ . : / = + - @"
        )
    return None


def check_rds_tag(key: str, value: str) -> None:
    """One RDS tag (AddTagsToResource ``Tags``), as AWS would check it."""
    problem = tag_text_problem(key, what="tag key", max_length=TAG_KEY_MAX, min_length=1) or tag_text_problem(
        value, what=f"value of tag {key!r}", max_length=TAG_VALUE_MAX, min_length=0
    )
    if problem:
        raise AwsContractError(f"AddTagsToResource: {problem}")


def check_rds_tags(tags: Iterable[Mapping[str, Any]]) -> None:
    for tag in tags:
        check_rds_tag(tag.get("Key"), tag.get("Value", ""))  # type: ignore[arg-type]


def tag_safe(text: str, *, max_length: int = TAG_VALUE_MAX) -> str:
    """``text`` with every character RDS refuses in a tag replaced by ``_``, cut to ``max_length``.

    For values built from outside text (a run id, an incident key) that go into a tag.
    """
    cleaned = "".join(char if _tag_character_allowed(char) else "_" for char in str(text))
    while cleaned.lower().startswith(TAG_RESERVED_PREFIXES):
        cleaned = "_" + cleaned[4:]
    return cleaned[:max_length]


def check_db_instance_identifier(identifier: str, *, parameter: str = "DBInstanceIdentifier") -> None:
    """An RDS DB instance identifier: 1-63 letters/digits/hyphens, letter first, no trailing hyphen, no ``--``."""
    if not isinstance(identifier, str) or not identifier:
        raise AwsContractError(f"{parameter} must be a non-empty string, got {identifier!r}")
    if len(identifier) > DB_INSTANCE_ID_MAX:
        raise AwsContractError(f"{parameter} {identifier[:70]!r} is longer than {DB_INSTANCE_ID_MAX} characters")
    if not _DB_INSTANCE_ID.match(identifier):
        raise AwsContractError(
            f"{parameter} {identifier!r} must start with a letter and hold only ASCII letters, digits and hyphens"
        )
    if identifier.endswith("-") or "--" in identifier:
        raise AwsContractError(f"{parameter} {identifier!r} may not end with a hyphen or hold two consecutive hyphens")


def check_allocated_storage(gib: Any, storage_type: str | None = None, *, parameter: str = "AllocatedStorage") -> None:
    """An allocation in GiB: a positive integer, at most the storage type's maximum."""
    if isinstance(gib, bool) or not isinstance(gib, int):
        raise AwsContractError(f"{parameter} must be an integer number of GiB, got {gib!r}")
    limit = STORAGE_MAX_GIB.get(storage_type or "", max(STORAGE_MAX_GIB.values()))
    if not 1 <= gib <= limit:
        raise AwsContractError(f"{parameter} {gib} GiB is outside 1-{limit} GiB ({storage_type or 'any type'})")


def check_modify_db_instance(request: Mapping[str, Any], *, storage_type: str | None = None) -> None:
    """A ModifyDBInstance storage request as the guard builds it."""
    check_db_instance_identifier(request.get("DBInstanceIdentifier"))  # type: ignore[arg-type]
    check_allocated_storage(request.get("AllocatedStorage"), storage_type)
    if "MaxAllocatedStorage" in request:
        check_allocated_storage(request["MaxAllocatedStorage"], storage_type, parameter="MaxAllocatedStorage")
        if request["MaxAllocatedStorage"] < request["AllocatedStorage"]:
            raise AwsContractError(
                f"MaxAllocatedStorage {request['MaxAllocatedStorage']} is below AllocatedStorage "
                f"{request['AllocatedStorage']}"
            )
    if not isinstance(request.get("ApplyImmediately", False), bool):
        raise AwsContractError("ApplyImmediately must be a boolean")


def check_instance_filter(values: Sequence[str]) -> None:
    """DescribeDBInstances ``Filters=[{"Name": "db-instance-id", "Values": values}]``."""
    if not values or len(values) > FILTER_MAX_VALUES:
        raise AwsContractError(f"a DescribeDBInstances filter takes 1-{FILTER_MAX_VALUES} values, got {len(values)}")
    for value in values:
        check_db_instance_identifier(value, parameter="db-instance-id filter value")


def check_describe_events(source_identifier: str, duration_minutes: int) -> None:
    """DescribeEvents for one DB instance over the last ``duration_minutes``."""
    check_db_instance_identifier(source_identifier, parameter="SourceIdentifier")
    if isinstance(duration_minutes, bool) or not isinstance(duration_minutes, int):
        raise AwsContractError(f"Duration must be an integer number of minutes, got {duration_minutes!r}")
    if not 1 <= duration_minutes <= EVENTS_MAX_DURATION_MINUTES:
        raise AwsContractError(
            f"Duration {duration_minutes} min is outside 1-{EVENTS_MAX_DURATION_MINUTES} (RDS keeps 14 days of events)"
        )


def check_metric_period(period_seconds: Any) -> None:
    if isinstance(period_seconds, bool) or not isinstance(period_seconds, int) or period_seconds < 1:
        raise AwsContractError(f"Period must be a positive integer number of seconds, got {period_seconds!r}")
    if period_seconds not in _HIGH_RESOLUTION_PERIODS and period_seconds % 60:
        raise AwsContractError(f"Period {period_seconds} s must be 1, 5, 10, 20, 30, 60 or a multiple of 60")


def check_metric_data_queries(queries: Sequence[Mapping[str, Any]]) -> None:
    """GetMetricData ``MetricDataQueries``: count, ids, dimension values and periods."""
    if not 1 <= len(queries) <= METRIC_QUERIES_MAX:
        raise AwsContractError(f"GetMetricData takes 1-{METRIC_QUERIES_MAX} queries, got {len(queries)}")
    seen: set[str] = set()
    for query in queries:
        query_id = query.get("Id")
        if not isinstance(query_id, str) or len(query_id) > METRIC_QUERY_ID_MAX or not _METRIC_QUERY_ID.match(query_id):
            raise AwsContractError(
                f"MetricDataQuery Id {query_id!r} must start with a lowercase letter and hold only letters, digits "
                f"and underscores (at most {METRIC_QUERY_ID_MAX})"
            )
        if query_id in seen:
            raise AwsContractError(f"MetricDataQuery Id {query_id!r} is used twice in one call")
        seen.add(query_id)
        stat = query.get("MetricStat") or {}
        for dimension in (stat.get("Metric") or {}).get("Dimensions") or []:
            value = dimension.get("Value")
            if not isinstance(value, str) or not 1 <= len(value) <= DIMENSION_VALUE_MAX:
                raise AwsContractError(
                    f"dimension {dimension.get('Name')!r} value must be 1-{DIMENSION_VALUE_MAX} characters"
                )
        if "Period" in stat:
            check_metric_period(stat["Period"])
