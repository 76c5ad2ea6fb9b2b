"""The documented request contracts of the APIs the ``aws_cost_review`` SOP calls, checked where each request is built.

Same idea as :mod:`toilless.common.aws_contracts` (RDS, CloudWatch): moto accepts requests real AWS refuses (a
GetCostAndUsage ``TimePeriod`` two years back is answered by moto and refused by AWS with ``ValidationException``,
which the task then retried), so each request is checked against the documented constraints right before it is sent.
A request that breaks one raises :class:`CostExplorerContractError` / :class:`GithubContractError`, both
:class:`toilless.common.errors.InvalidInput`: the task fails at once with the message, never retried.

Sources:

* AWS Cost Explorer API reference, ``GetCostAndUsage``
  (https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_GetCostAndUsage.html) and its types
  ``DateInterval``, ``GroupDefinition``, ``Expression``, ``DimensionValues``:
  ``TimePeriod`` Start and End are ``YYYY-MM-DD`` (type YearMonthDay), Start inclusive, End exclusive, so Start is
  before End; Cost Explorer holds the last 13 months of history (38 months once multi-year data is enabled in the Cost
  Explorer settings), an older Start is a ``ValidationException``; ``Granularity`` is ``DAILY``, ``MONTHLY`` or
  ``HOURLY``; ``Metrics`` (required) are among ``AmortizedCost, BlendedCost, NetAmortizedCost, NetUnblendedCost,
  NormalizedUsageAmount, UnblendedCost, UsageQuantity``; ``GroupBy`` holds at most two groups, each of ``Type``
  ``DIMENSION``, ``TAG`` or ``COST_CATEGORY``; a ``DIMENSION`` group's Key is one of ``AZ, INSTANCE_TYPE,
  LEGAL_ENTITY_NAME, INVOICING_ENTITY, LINKED_ACCOUNT, OPERATION, PLATFORM, PURCHASE_TYPE, SERVICE, TENANCY,
  RECORD_TYPE, USAGE_TYPE``; an ``Expression`` sets exactly one of ``And``, ``Or``, ``Not``, ``Dimensions``,
  ``Tags``, ``CostCategories``; ``DimensionValues.Key`` is a ``Dimension`` enum value; strings (keys, values,
  ``NextPageToken``) are GenericString: at most 1024 characters, ``NextPageToken`` at most 8192.
* AWS Cost Explorer API reference, ``GetAnomalies``
  (https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_GetAnomalies.html),
  ``AnomalyDateInterval`` and ``TotalImpactFilter``: ``DateInterval.StartDate`` required, ``StartDate`` and
  ``EndDate`` ``YYYY-MM-DD``; ``MonitorArn`` a string of at most 1024 characters (an anomaly monitor ARN,
  ``arn:<partition>:ce::<account>:anomalymonitor/<id>`` as CreateAnomalyMonitor returns it); ``TotalImpact``
  ``NumericOperator`` one of ``EQUAL, GREATER_THAN_OR_EQUAL, LESS_THAN_OR_EQUAL, GREATER_THAN, LESS_THAN, BETWEEN``,
  ``StartValue`` a number (required), ``EndValue`` needed by ``BETWEEN``.
* GitHub REST API, "Create an issue" (https://docs.github.com/en/rest/issues/issues#create-an-issue): ``title``
  required; GitHub answers 422 "title is too long (maximum is 256 characters)" and "body is too long (maximum is 65536
  characters)"; a label name is at most 50 characters ("name is too long (maximum is 50 characters)").

Pure: no Airflow, no boto3.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from toilless.common.aws_contracts import AwsContractError
from toilless.common.errors import InvalidInput

#: Months of history Cost Explorer serves: the current month and the 12 before it, or 38 with multi-year data.
HISTORY_MONTHS_DEFAULT = 13
HISTORY_MONTHS_MULTI_YEAR = 38
GRANULARITIES = frozenset({"DAILY", "MONTHLY", "HOURLY"})
METRICS = frozenset(
    {
        "AmortizedCost",
        "BlendedCost",
        "NetAmortizedCost",
        "NetUnblendedCost",
        "NormalizedUsageAmount",
        "UnblendedCost",
        "UsageQuantity",
    }
)
GROUP_BY_MAX = 2
GROUP_TYPES = frozenset({"DIMENSION", "TAG", "COST_CATEGORY"})
GROUP_BY_DIMENSIONS = frozenset(
    {
        "AZ",
        "INSTANCE_TYPE",
        "LEGAL_ENTITY_NAME",
        "INVOICING_ENTITY",
        "LINKED_ACCOUNT",
        "OPERATION",
        "PLATFORM",
        "PURCHASE_TYPE",
        "SERVICE",
        "TENANCY",
        "RECORD_TYPE",
        "USAGE_TYPE",
    }
)
#: The ``Dimension`` enum (DimensionValues.Key in a Filter).
FILTER_DIMENSIONS = frozenset(
    {
        "AZ",
        "INSTANCE_TYPE",
        "LINKED_ACCOUNT",
        "LINKED_ACCOUNT_NAME",
        "OPERATION",
        "PURCHASE_TYPE",
        "REGION",
        "SERVICE",
        "SERVICE_CODE",
        "USAGE_TYPE",
        "USAGE_TYPE_GROUP",
        "RECORD_TYPE",
        "OPERATING_SYSTEM",
        "TENANCY",
        "SCOPE",
        "PLATFORM",
        "SUBSCRIPTION_ID",
        "LEGAL_ENTITY_NAME",
        "DEPLOYMENT_OPTION",
        "DATABASE_ENGINE",
        "CACHE_ENGINE",
        "INSTANCE_TYPE_FAMILY",
        "BILLING_ENTITY",
        "RESERVATION_ID",
        "RESOURCE_ID",
        "RIGHTSIZING_TYPE",
        "SAVINGS_PLANS_TYPE",
        "SAVINGS_PLAN_ARN",
        "PAYMENT_OPTION",
        "AGREEMENT_END_DATE_TIME_AFTER",
        "AGREEMENT_END_DATE_TIME_BEFORE",
        "INVOICING_ENTITY",
        "ANOMALY_TOTAL_IMPACT_ABSOLUTE",
        "ANOMALY_TOTAL_IMPACT_PERCENTAGE",
    }
)
EXPRESSION_OPERANDS = ("And", "Or", "Not", "Dimensions", "Tags", "CostCategories")
GENERIC_STRING_MAX = 1024
NEXT_PAGE_TOKEN_MAX = 8192
NUMERIC_OPERATORS = frozenset(
    {"EQUAL", "GREATER_THAN_OR_EQUAL", "LESS_THAN_OR_EQUAL", "GREATER_THAN", "LESS_THAN", "BETWEEN"}
)
_YEAR_MONTH_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}\Z")
_MONITOR_ARN = re.compile(r"^arn:aws[a-z-]*:ce::\d{12}:anomalymonitor/[A-Za-z0-9-]+\Z")

GITHUB_TITLE_MAX = 256
GITHUB_BODY_MAX = 65_536
GITHUB_LABEL_MAX = 50
_GITHUB_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+\Z")


class CostExplorerContractError(AwsContractError):
    """A Cost Explorer request Toilless was about to send breaks the API's documented contract."""


class GithubContractError(InvalidInput):
    """A GitHub issue Toilless was about to create breaks the REST API's documented limits."""


def _first_of_month(day: date, months_back: int) -> date:
    index = day.year * 12 + (day.month - 1) - months_back
    return date(index // 12, index % 12 + 1, 1)


def earliest_start(today: date, history_months: int = HISTORY_MONTHS_DEFAULT) -> date:
    """The oldest ``TimePeriod.Start`` Cost Explorer serves on ``today``: the first day of the oldest month of history
    (the current month counts as one: 13 months back from December 2026 starts on 2025-12-01)."""
    if history_months not in (HISTORY_MONTHS_DEFAULT, HISTORY_MONTHS_MULTI_YEAR):
        raise CostExplorerContractError(
            f"Cost Explorer keeps {HISTORY_MONTHS_DEFAULT} months of history, or {HISTORY_MONTHS_MULTI_YEAR} with "
            f"multi-year data enabled; got {history_months!r}"
        )
    return _first_of_month(today, history_months - 1)


def parse_year_month_day(value: Any, *, parameter: str) -> date:
    """A ``YYYY-MM-DD`` date as Cost Explorer takes it."""
    if not isinstance(value, str) or not _YEAR_MONTH_DAY.match(value):
        raise CostExplorerContractError(f"{parameter} must be a YYYY-MM-DD date, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError as err:
        raise CostExplorerContractError(f"{parameter} {value!r} is not a calendar date") from err


def _check_generic_string(value: Any, *, parameter: str, max_length: int = GENERIC_STRING_MAX) -> None:
    if not isinstance(value, str) or len(value) > max_length:
        raise CostExplorerContractError(f"{parameter} must be a string of at most {max_length} characters")


def check_time_period(
    period: Mapping[str, Any], *, today: date | None = None, history_months: int = HISTORY_MONTHS_DEFAULT
) -> None:
    """GetCostAndUsage ``TimePeriod``: dates, Start before End, and (given ``today``) Start within the history."""
    if not isinstance(period, Mapping):
        raise CostExplorerContractError("TimePeriod must hold Start and End")
    start = parse_year_month_day(period.get("Start"), parameter="TimePeriod.Start")
    end = parse_year_month_day(period.get("End"), parameter="TimePeriod.End")
    if start >= end:
        raise CostExplorerContractError(
            f"TimePeriod.Start {start} must be before TimePeriod.End {end} (End is exclusive)"
        )
    if today is not None:
        earliest = earliest_start(today, history_months)
        if start < earliest:
            raise CostExplorerContractError(
                f"TimePeriod.Start {start} is older than Cost Explorer's {history_months} months of history "
                f"(on {today} the earliest start is {earliest}): AWS refuses it with ValidationException"
            )


def check_expression(expression: Any, *, parameter: str = "Filter") -> None:
    """A Cost Explorer ``Expression``: exactly one operand; dimension keys and values as documented."""
    if not isinstance(expression, Mapping):
        raise CostExplorerContractError(f"{parameter} must be an Expression object")
    operands = [name for name in EXPRESSION_OPERANDS if expression.get(name)]
    unknown = sorted(set(expression) - set(EXPRESSION_OPERANDS))
    if unknown:
        raise CostExplorerContractError(f"{parameter} has unknown field(s) {', '.join(unknown)}")
    if len(operands) != 1:
        raise CostExplorerContractError(
            f"{parameter} must set exactly one of {', '.join(EXPRESSION_OPERANDS)}, got {operands or 'none'}"
        )
    operand = operands[0]
    if operand in ("And", "Or"):
        children = expression[operand]
        if not isinstance(children, Sequence) or isinstance(children, str | bytes):
            raise CostExplorerContractError(f"{parameter}.{operand} must be a list of Expressions")
        for index, child in enumerate(children):
            check_expression(child, parameter=f"{parameter}.{operand}[{index}]")
    elif operand == "Not":
        check_expression(expression["Not"], parameter=f"{parameter}.Not")
    else:
        values = expression[operand]
        where = f"{parameter}.{operand}"
        if operand == "Dimensions" and values.get("Key") not in FILTER_DIMENSIONS:
            raise CostExplorerContractError(f"{where}.Key {values.get('Key')!r} is not a Cost Explorer dimension")
        if operand != "Dimensions":
            _check_generic_string(values.get("Key"), parameter=f"{where}.Key")
        items = values.get("Values") or []
        if not items:
            raise CostExplorerContractError(f"{where}.Values must name at least one value")
        for value in items:
            _check_generic_string(value, parameter=f"{where} value")


def check_group_by(groups: Sequence[Mapping[str, Any]]) -> None:
    """GetCostAndUsage ``GroupBy``: at most two groups, each a known type; dimension keys from the documented list."""
    if len(groups) > GROUP_BY_MAX:
        raise CostExplorerContractError(f"GroupBy takes at most {GROUP_BY_MAX} groups, got {len(groups)}")
    for group in groups:
        kind, key = group.get("Type"), group.get("Key")
        if kind not in GROUP_TYPES:
            raise CostExplorerContractError(f"GroupBy Type {kind!r} is not one of {', '.join(sorted(GROUP_TYPES))}")
        if kind == "DIMENSION" and key not in GROUP_BY_DIMENSIONS:
            raise CostExplorerContractError(f"GroupBy dimension {key!r} cannot group GetCostAndUsage results")
        _check_generic_string(key, parameter="GroupBy Key")
        if not key:
            raise CostExplorerContractError("GroupBy Key must not be empty")


def check_next_page_token(token: Any) -> None:
    _check_generic_string(token, parameter="NextPageToken", max_length=NEXT_PAGE_TOKEN_MAX)


def check_get_cost_and_usage(
    request: Mapping[str, Any], *, today: date | None = None, history_months: int = HISTORY_MONTHS_DEFAULT
) -> None:
    """One GetCostAndUsage request, as AWS would check it (``today``: the date the history limit counts from)."""
    check_time_period(request.get("TimePeriod"), today=today, history_months=history_months)  # type: ignore[arg-type]
    if request.get("Granularity") not in GRANULARITIES:
        raise CostExplorerContractError(
            f"Granularity {request.get('Granularity')!r} is not one of {', '.join(sorted(GRANULARITIES))}"
        )
    metrics = request.get("Metrics")
    if not metrics:
        raise CostExplorerContractError("Metrics must name at least one metric")
    for metric in metrics:
        if metric not in METRICS:
            raise CostExplorerContractError(f"metric {metric!r} is not one of {', '.join(sorted(METRICS))}")
    check_group_by(request.get("GroupBy") or [])
    if "Filter" in request:
        check_expression(request["Filter"])
    if "NextPageToken" in request:
        check_next_page_token(request["NextPageToken"])


def check_total_impact(total_impact: Mapping[str, Any]) -> None:
    operator = total_impact.get("NumericOperator")
    if operator not in NUMERIC_OPERATORS:
        raise CostExplorerContractError(
            f"TotalImpact.NumericOperator {operator!r} is not one of {', '.join(sorted(NUMERIC_OPERATORS))}"
        )
    for name in ("StartValue", "EndValue"):
        value = total_impact.get(name)
        if name == "StartValue" or value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise CostExplorerContractError(f"TotalImpact.{name} must be a finite number, got {value!r}")
    if operator == "BETWEEN" and total_impact.get("EndValue") is None:
        raise CostExplorerContractError("TotalImpact BETWEEN needs an EndValue")


def check_monitor_arn(arn: Any) -> None:
    _check_generic_string(arn, parameter="MonitorArn")
    if not _MONITOR_ARN.match(arn):
        raise CostExplorerContractError(
            f"MonitorArn {arn[:120]!r} is not an anomaly monitor ARN (arn:aws:ce::<12-digit account>:anomalymonitor/<id>)"
        )


def check_get_anomalies(request: Mapping[str, Any]) -> None:
    """One GetAnomalies request, as AWS would check it."""
    interval = request.get("DateInterval")
    if not isinstance(interval, Mapping):
        raise CostExplorerContractError("DateInterval with a StartDate is required")
    start = parse_year_month_day(interval.get("StartDate"), parameter="DateInterval.StartDate")
    if interval.get("EndDate") is not None:
        end = parse_year_month_day(interval["EndDate"], parameter="DateInterval.EndDate")
        if end < start:
            raise CostExplorerContractError(f"DateInterval.EndDate {end} is before StartDate {start}")
    if "MonitorArn" in request:
        check_monitor_arn(request["MonitorArn"])
    if "TotalImpact" in request:
        check_total_impact(request["TotalImpact"])
    if "NextPageToken" in request:
        check_next_page_token(request["NextPageToken"])


def check_github_issue(repo_name: Any, *, title: Any, body: Any, labels: Sequence[Any]) -> None:
    """POST /repos/{owner}/{repo}/issues: repository, title, body and label names within GitHub's limits."""
    if not isinstance(repo_name, str) or not _GITHUB_REPO.match(repo_name):
        raise GithubContractError(f"GitHub repository {repo_name!r} must be written owner/name")
    if not isinstance(title, str) or not title.strip():
        raise GithubContractError("an issue title is required")
    if len(title) > GITHUB_TITLE_MAX:
        raise GithubContractError(f"issue title is {len(title)} characters; GitHub takes at most {GITHUB_TITLE_MAX}")
    if not isinstance(body, str) or len(body) > GITHUB_BODY_MAX:
        size = len(body) if isinstance(body, str) else type(body).__name__
        raise GithubContractError(f"issue body is {size} characters; GitHub takes at most {GITHUB_BODY_MAX}")
    for label in labels:
        if not isinstance(label, str) or not label.strip() or len(label) > GITHUB_LABEL_MAX:
            raise GithubContractError(
                f"label {label!r} must be a non-empty name of at most {GITHUB_LABEL_MAX} characters"
            )
