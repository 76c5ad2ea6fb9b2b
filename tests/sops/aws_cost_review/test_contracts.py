"""Contract tests for the aws_cost_review requests (Cost Explorer and GitHub issues), without moto or GitHub.

moto serves a GetCostAndUsage two years back that real AWS refuses with ValidationException; these tests pin each
documented constraint (sources in ``toilless.common.cost_contracts``) and that the request builders enforce them.
Dates are relative to today, so the suite holds on any day.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from toilless.common import cost_contracts as contracts
from toilless.common.cost_contracts import CostExplorerContractError, GithubContractError
from toilless.common.errors import InvalidInput
from toilless.sops.aws_cost_review import anomalies as anomaly_rules
from toilless.sops.aws_cost_review import costs as cost_rules
from toilless.sops.aws_cost_review import errors as cost_errors
from toilless.sops.aws_cost_review import issues as issue_drafts
from toilless.sops.aws_cost_review import window as review_period

TODAY = date.today()
MONITOR = "arn:aws:ce::123456789012:anomalymonitor/0f4c1d2e-aaaa-bbbb-cccc-1234567890ab"


def _request(**overrides: Any) -> dict[str, Any]:
    start = contracts.earliest_start(TODAY)
    request: dict[str, Any] = {
        "TimePeriod": {"Start": start.isoformat(), "End": TODAY.isoformat()},
        "Granularity": "MONTHLY",
        "Metrics": ["UnblendedCost"],
        "GroupBy": [{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}, {"Type": "DIMENSION", "Key": "SERVICE"}],
        "Filter": {
            "And": [
                {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": ["123456789012"]}},
                {"Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Credit", "Refund"]}}},
            ]
        },
    }
    request.update(overrides)
    return request


def test_contract_errors_are_invalid_input_so_never_retried() -> None:
    assert issubclass(CostExplorerContractError, InvalidInput)
    assert issubclass(GithubContractError, InvalidInput)


@pytest.mark.parametrize(
    ("today", "months", "earliest"),
    [
        pytest.param(date(2026, 12, 1), 13, date(2025, 12, 1), id="13-months-counts-the-current-one"),
        pytest.param(date(2026, 1, 31), 13, date(2025, 1, 1), id="across-a-year"),
        pytest.param(date(2026, 12, 15), 38, date(2023, 11, 1), id="multi-year-38"),
    ],
)
def test_earliest_start(today: date, months: int, earliest: date) -> None:
    assert contracts.earliest_start(today, months) == earliest


def test_history_months_other_than_13_or_38_refused() -> None:
    with pytest.raises(CostExplorerContractError, match="13 months"):
        contracts.earliest_start(TODAY, 24)


def test_get_cost_and_usage_accepted_at_the_history_edge() -> None:
    contracts.check_get_cost_and_usage(_request(), today=TODAY)
    contracts.check_get_cost_and_usage(_request(NextPageToken="t" * 8192), today=TODAY)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param(
            {
                "TimePeriod": {
                    "Start": (contracts.earliest_start(TODAY) - timedelta(days=1)).isoformat(),
                    "End": TODAY.isoformat(),
                }
            },
            "older than Cost Explorer's 13 months",
            id="start-a-day-before-the-history",
        ),
        pytest.param({"TimePeriod": {"Start": "2026/01/01", "End": "2026-02-01"}}, "YYYY-MM-DD", id="slashes"),
        pytest.param({"TimePeriod": {"Start": "2026-02-30", "End": "2026-03-01"}}, "calendar date", id="no-such-day"),
        pytest.param({"TimePeriod": {"Start": TODAY.isoformat(), "End": TODAY.isoformat()}}, "before", id="empty"),
        pytest.param({"Granularity": "WEEKLY"}, "Granularity", id="granularity"),
        pytest.param({"Metrics": []}, "at least one metric", id="no-metric"),
        pytest.param({"Metrics": ["Unblended"]}, "'Unblended'", id="unknown-metric"),
        pytest.param(
            {"GroupBy": [{"Type": "DIMENSION", "Key": k} for k in ("SERVICE", "REGION", "AZ")]},
            "at most 2",
            id="three-groups",
        ),
        pytest.param({"GroupBy": [{"Type": "DIMENSION", "Key": "REGION"}]}, "cannot group", id="group-by-region"),
        pytest.param({"GroupBy": [{"Type": "LABEL", "Key": "team"}]}, "Type 'LABEL'", id="group-type"),
        pytest.param({"GroupBy": [{"Type": "TAG", "Key": "k" * 1025}]}, "1024", id="tag-key-too-long"),
        pytest.param({"Filter": {"Dimensions": {"Key": "ACCOUNT", "Values": ["1"]}}}, "not a Cost Explorer", id="dim"),
        pytest.param(
            {"Filter": {"Dimensions": {"Key": "SERVICE", "Values": []}}}, "at least one value", id="no-values"
        ),
        pytest.param(
            {"Filter": {"Dimensions": {"Key": "SERVICE", "Values": ["x"]}, "Tags": {"Key": "t", "Values": ["v"]}}},
            "exactly one",
            id="two-operands",
        ),
        pytest.param(
            {"Filter": {"Not": {"Dimensions": {"Key": "SERVICE", "Values": ["v" * 1025]}}}}, "1024", id="long"
        ),
        pytest.param({"NextPageToken": "t" * 8193}, "8192", id="page-token"),
    ],
)
def test_get_cost_and_usage_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(CostExplorerContractError, match=message):
        contracts.check_get_cost_and_usage(_request(**overrides), today=TODAY)


def test_multi_year_history_accepts_what_13_months_refuses() -> None:
    start = contracts.earliest_start(TODAY, 38)
    request = _request(TimePeriod={"Start": start.isoformat(), "End": TODAY.isoformat()})
    contracts.check_get_cost_and_usage(request, today=TODAY, history_months=38)
    with pytest.raises(CostExplorerContractError, match="13 months"):
        contracts.check_get_cost_and_usage(request, today=TODAY)


def _anomalies(**overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "DateInterval": {"StartDate": (TODAY - timedelta(days=3)).isoformat(), "EndDate": TODAY.isoformat()},
        "TotalImpact": {"NumericOperator": "GREATER_THAN", "StartValue": 120.0},
        "MonitorArn": MONITOR,
    }
    request.update(overrides)
    return request


def test_get_anomalies_accepted() -> None:
    contracts.check_get_anomalies(_anomalies())
    contracts.check_get_anomalies({"DateInterval": {"StartDate": TODAY.isoformat()}})
    contracts.check_get_anomalies(
        _anomalies(TotalImpact={"NumericOperator": "BETWEEN", "StartValue": 1, "EndValue": 2.5})
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"DateInterval": {}}, "StartDate", id="no-start"),
        pytest.param({"DateInterval": {"StartDate": "01-12-2026"}}, "YYYY-MM-DD", id="start-format"),
        pytest.param(
            {"DateInterval": {"StartDate": TODAY.isoformat(), "EndDate": (TODAY - timedelta(days=1)).isoformat()}},
            "before StartDate",
            id="end-before-start",
        ),
        pytest.param({"MonitorArn": "mon-123"}, "anomaly monitor ARN", id="not-an-arn"),
        pytest.param({"MonitorArn": "arn:aws:ce::1234:anomalymonitor/x"}, "anomaly monitor ARN", id="short-account"),
        pytest.param({"MonitorArn": MONITOR + "x" * 1024}, "1024", id="arn-too-long"),
        pytest.param({"TotalImpact": {"NumericOperator": "MORE", "StartValue": 1}}, "NumericOperator", id="operator"),
        pytest.param(
            {"TotalImpact": {"NumericOperator": "GREATER_THAN", "StartValue": float("nan")}}, "finite", id="nan"
        ),
        pytest.param({"TotalImpact": {"NumericOperator": "GREATER_THAN"}}, "StartValue", id="no-start-value"),
        pytest.param({"TotalImpact": {"NumericOperator": "BETWEEN", "StartValue": 1}}, "EndValue", id="between"),
    ],
)
def test_get_anomalies_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(CostExplorerContractError, match=message):
        contracts.check_get_anomalies(_anomalies(**overrides))


# -- the builders enforce the contracts -----------------------------------------------------------------------------
def test_cost_query_of_a_current_review_passes_its_own_contract() -> None:
    window = review_period.review_window(TODAY, 3)
    request = cost_rules.cost_query(
        window, metric="UnblendedCost", accounts=["123456789012"], exclude_record_types=["Credit"], today=TODAY
    )
    assert request["TimePeriod"]["End"] == TODAY.isoformat()


@pytest.mark.parametrize("days_back", [pytest.param(365, id="a-year-back"), pytest.param(800, id="two-years-back")])
def test_cost_query_refuses_an_as_of_beyond_the_history(days_back: int) -> None:
    """#10: moto answers it; real AWS answers ValidationException and the task was retried."""
    window = review_period.review_window(TODAY - timedelta(days=days_back), 3)
    with pytest.raises(cost_errors.CostReviewError, match="earliest as-of for this look-back is") as caught:
        cost_rules.cost_query(window, metric="UnblendedCost", today=TODAY)
    assert isinstance(caught.value, InvalidInput)
    assert TODAY.isoformat() in str(caught.value)


def test_earliest_as_of_named_in_the_message_is_accepted() -> None:
    old = review_period.review_window(TODAY - timedelta(days=365), 3)
    with pytest.raises(cost_errors.CostReviewError) as caught:
        review_period.check_history(old, TODAY)
    earliest_as_of = date.fromisoformat(str(caught.value).split("look-back is ")[1][:10])
    review_period.check_history(review_period.review_window(earliest_as_of, 3), TODAY)
    with pytest.raises(cost_errors.CostReviewError):
        review_period.check_history(review_period.review_window(earliest_as_of - timedelta(days=1), 3), TODAY)


def test_anomaly_query_refuses_a_malformed_monitor_arn() -> None:
    with pytest.raises(CostExplorerContractError, match="anomaly monitor ARN"):
        anomaly_rules.anomaly_query(TODAY - timedelta(days=3), TODAY, 120, "my-monitor")
    assert anomaly_rules.anomaly_query(TODAY - timedelta(days=3), TODAY, 120, MONITOR)["MonitorArn"] == MONITOR


def test_anomaly_query_refuses_a_nan_dollar_floor() -> None:
    with pytest.raises(CostExplorerContractError, match="finite"):
        anomaly_rules.anomaly_query(TODAY - timedelta(days=3), TODAY, float("inf"))


class _FakeConn:
    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages, self.calls = pages, []

    def get_cost_and_usage(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return self.pages[len(self.calls) - 1]


def test_hook_checks_every_page_request_before_calling_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    from toilless.hooks.cost_explorer import CostExplorerHook

    hook = CostExplorerHook(aws_conn_id="aws_default")
    conn = _FakeConn([{"NextPageToken": "x" * 9000}, {}])
    monkeypatch.setattr(CostExplorerHook, "conn", conn)
    with pytest.raises(CostExplorerContractError, match="8192"):
        hook.get_cost_and_usage_pages(_request())
    assert len(conn.calls) == 1  # the second page's bad token never reached AWS


# -- GitHub "create an issue" --------------------------------------------------------------------------------------
def test_github_issue_accepted_at_the_limits() -> None:
    contracts.check_github_issue("acme/finops", title="t" * 256, body="b" * 65_536, labels=["l" * 50, "cost"])


@pytest.mark.parametrize(
    ("repo", "title", "body", "labels", "message"),
    [
        pytest.param("acme", "t", "b", [], "owner/name", id="repo-without-owner"),
        pytest.param("acme/finops", "  ", "b", [], "title is required", id="blank-title"),
        pytest.param("acme/finops", "t" * 257, "b", [], "at most 256", id="title-257"),
        pytest.param("acme/finops", "t", "b" * 65_537, [], "at most 65536", id="body-65537"),
        pytest.param("acme/finops", "t", "b", ["l" * 51], "at most 50", id="label-51"),
        pytest.param("acme/finops", "t", "b", [""], "non-empty", id="empty-label"),
    ],
)
def test_github_issue_refused(repo: str, title: str, body: str, labels: list[str], message: str) -> None:
    with pytest.raises(GithubContractError, match=message):
        contracts.check_github_issue(repo, title=title, body=body, labels=labels)


def test_issue_drafts_fit_github_limits_whatever_the_outside_text() -> None:
    """The drafts truncate outside text themselves: the worst case must still pass the contract."""
    huge = "x" * 200_000
    title, body = issue_drafts._issue_title(huge + "\n" + huge), issue_drafts._issue_body(huge, "k" * 64)
    contracts.check_github_issue("acme/finops", title=title, body=body, labels=["cost-review"])


def test_github_hook_refuses_before_calling_github(monkeypatch: pytest.MonkeyPatch) -> None:
    from toilless.hooks.github_issues import GithubIssueHook

    def no_call(self: Any) -> Any:
        raise AssertionError("GitHub was called with a request it would refuse")

    monkeypatch.setattr(GithubIssueHook, "get_conn", no_call)
    hook = GithubIssueHook.__new__(GithubIssueHook)
    with pytest.raises(GithubContractError, match="at most 50"):
        hook.create_issue("acme/finops", title="t", body="b", labels=["l" * 51])
