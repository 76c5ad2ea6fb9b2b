"""The AWS cost review maths (toilless.sops.aws_cost_review: window, costs, anomalies, issues, report): each edge case of the SOP with its expected verdict."""

from __future__ import annotations

from datetime import date

import pytest

from toilless.sops.aws_cost_review import anomalies as anomaly_rules
from toilless.sops.aws_cost_review import costs as cost_rules
from toilless.sops.aws_cost_review import errors as cost_errors
from toilless.sops.aws_cost_review import issues as issue_drafts
from toilless.sops.aws_cost_review import report as cost_report
from toilless.sops.aws_cost_review import window as review_period

# November 2026, 21 of 30 days; baseline Aug (31), Sep, Oct (31)
NOV_22 = review_period.review_window(date(2026, 11, 22), 3)
AUG, SEP, OCT, NOV = date(2026, 8, 1), date(2026, 9, 1), date(2026, 10, 1), date(2026, 11, 1)


def steady(daily: float, *months: date) -> dict[date, float]:
    """Spend of ``daily`` dollars a day over whole months."""
    return {month: daily * review_period.days_in(month) for month in months}


def review(
    months: dict[date, float], window: review_period.ReviewWindow = NOV_22, **kwargs
) -> cost_rules.ServiceReview:
    kwargs.setdefault("threshold_percent", 15.0)
    kwargs.setdefault("min_dollars", 120.0)
    return cost_rules.review_service("", "Amazon EC2", months, window, **kwargs)


# -- the review window ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("as_of", "month", "elapsed", "days", "baseline"),
    [
        pytest.param(date(2026, 11, 22), NOV, 21, 30, (AUG, SEP, OCT), id="mid-month: data through yesterday"),
        pytest.param(date(2026, 12, 1), NOV, 30, 30, (AUG, SEP, OCT), id="first of month reviews the full month"),
        pytest.param(
            date(2026, 1, 1),
            date(2025, 12, 1),
            31,
            31,
            (date(2025, 9, 1), date(2025, 10, 1), date(2025, 11, 1)),
            id="new year crosses the year boundary",
        ),
        pytest.param(
            date(2024, 3, 1),
            date(2024, 2, 1),
            29,
            29,
            (date(2023, 11, 1), date(2023, 12, 1), date(2024, 1, 1)),
            id="leap February",
        ),
    ],
)
def test_review_window(as_of: date, month: date, elapsed: int, days: int, baseline: tuple[date, ...]) -> None:
    window = review_period.review_window(as_of, 3)
    assert (window.review_month, window.days_elapsed, window.days_in_month) == (month, elapsed, days)
    assert window.baseline_months == baseline
    assert window.query_start == baseline[0]
    assert window.query_end == as_of
    assert review_period.ReviewWindow.from_dict(window.as_dict()) == window


@pytest.mark.parametrize("lookback", [pytest.param(0, id="zero"), pytest.param(13, id="over a year")])
def test_review_window_rejects_bad_lookback(lookback: int) -> None:
    with pytest.raises(cost_errors.CostReviewError, match="look-back"):
        review_period.review_window(date(2026, 11, 22), lookback)


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        pytest.param(date(2026, 11, 23), date(2026, 11, 20), id="monday review looks back to friday"),
        pytest.param(date(2026, 11, 27), date(2026, 11, 23), id="friday review looks back to monday"),
        pytest.param(date(2026, 11, 25), date(2026, 11, 23), id="manual wednesday run looks back to monday"),
    ],
)
def test_previous_review(as_of: date, expected: date) -> None:
    assert review_period.previous_review(as_of, ["monday", "friday"]) == expected


def test_parse_as_of() -> None:
    assert review_period.parse_as_of(None, date(2026, 1, 2)) == date(2026, 1, 2)
    assert review_period.parse_as_of("2026-11-20", date(2026, 12, 2)) == date(2026, 11, 20)
    assert review_period.parse_as_of("2026-12-02", date(2026, 12, 2)) == date(2026, 12, 2)
    with pytest.raises(cost_errors.CostReviewError, match="not a date"):
        review_period.parse_as_of("20/11/2026", date(2026, 1, 2))


@pytest.mark.parametrize(
    "as_of", [pytest.param("2026-12-03", id="tomorrow"), pytest.param(date(2027, 6, 1), id="next-year-as-date")]
)
def test_as_of_in_the_future_is_refused(as_of: str | date) -> None:
    """#9: Cost Explorer has nothing for the future; the review would post an all-clear."""
    from toilless.common.errors import InvalidInput

    with pytest.raises(InvalidInput, match="in the future"):
        review_period.parse_as_of(as_of, date(2026, 12, 2))


# -- rule 1: month over baseline -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("months", "flagged", "reason", "percent"),
    [
        pytest.param(
            {**steady(100, AUG, SEP, OCT), NOV: 21 * 100}, False, cost_rules.OVER_BASELINE, 0.0, id="steady spend"
        ),
        pytest.param(
            {**steady(100, AUG, SEP, OCT), NOV: 21 * 130},
            True,
            cost_rules.OVER_BASELINE,
            30.0,
            id="over percent and $",
        ),
        pytest.param(
            {**steady(100, AUG, SEP, OCT), NOV: 21 * 115},
            False,
            cost_rules.OVER_BASELINE,
            15.0,
            id="exactly 15% is not over",
        ),
        pytest.param(
            {**steady(1, AUG, SEP, OCT), NOV: 21 * 2},
            False,
            cost_rules.OVER_BASELINE,
            100.0,
            id="over percent, under $",
        ),
        pytest.param(
            {**steady(1000, AUG, SEP, OCT), NOV: 21 * 1100},
            False,
            cost_rules.OVER_BASELINE,
            10.0,
            id="over $ (2100), under percent",
        ),
        pytest.param({NOV: 500.0}, True, cost_rules.NEW_SPEND, None, id="new spend over the minimum dollars"),
        pytest.param({NOV: 50.0}, False, cost_rules.NEW_SPEND, None, id="new spend under the minimum dollars"),
        pytest.param(
            {OCT: 3100.0, NOV: 21 * 100},
            False,
            cost_rules.OVER_BASELINE,
            0.0,
            id="one month of history is the baseline",
        ),
        pytest.param(
            {AUG: -200.0, SEP: -100.0, OCT: -50.0, NOV: 300.0},
            True,
            cost_rules.NO_POSITIVE_BASELINE,
            None,
            id="credits wiped out the baseline: judged on dollars",
        ),
        pytest.param(
            {**steady(100, AUG, SEP, OCT), NOV: -500.0},
            False,
            cost_rules.OVER_BASELINE,
            -123.8,
            id="refund this month",
        ),
    ],
)
def test_review_service_verdicts(months: dict[date, float], flagged: bool, reason: str, percent: float | None) -> None:
    result = review(months)
    assert result.flagged is flagged
    assert result.reason == reason
    assert result.change_percent == percent


def test_month_to_date_is_compared_as_daily_run_rate_not_raw() -> None:
    # 21 days at the usual $100/day: raw MTD ($2,100) vs the monthly average ($3,067) would read as -31%.
    result = review({**steady(100, AUG, SEP, OCT), NOV: 2100.0})
    assert result.change_percent == 0.0
    assert result.change_dollars == 0.0
    assert result.projected_month == 3000.0
    assert result.baseline_month == 3000.0  # $100/day over November's 30 days


def test_dollar_change_is_month_to_date_spend_over_baseline() -> None:
    result = review({**steady(100, AUG, SEP, OCT), NOV: 21 * 130})
    assert result.change_dollars == pytest.approx(630.0)
    assert result.projected_month == pytest.approx(3900.0)


def test_short_month_is_not_a_drop() -> None:
    # February 2026 (28 days) at the usual $100/day: a raw monthly comparison would read -8.7%.
    window = review_period.review_window(date(2026, 3, 1), 3)
    months = {**steady(100, *window.baseline_months), date(2026, 2, 1): 2800.0}
    result = review(months, window)
    assert (result.change_percent, result.flagged) == (0.0, False)


def test_short_month_in_the_baseline_counts_its_days() -> None:
    # Dec, Jan 31 days and Feb 28 days at $100/day; March 1-15 at $100/day is no change.
    window = review_period.review_window(date(2026, 3, 16), 3)
    months = {**steady(100, *window.baseline_months), date(2026, 3, 1): 1500.0}
    assert review(months, window).change_percent == 0.0


def test_partial_history_and_credits_are_noted() -> None:
    partial = review({OCT: 3100.0, NOV: 2100.0})
    assert partial.notes == ("baseline from 1 of 3 months (no spend before)",)
    refund = review({**steady(100, AUG, SEP, OCT), NOV: -500.0})
    assert "credits/refunds this month" in refund.notes


def test_estimated_figures_are_marked() -> None:
    result = review({**steady(100, AUG, SEP, OCT), NOV: 21 * 130}, estimated_months={NOV})
    assert result.estimated is True
    assert "estimated (unfinalised) figures" in result.notes
    assert review({**steady(100, AUG, SEP, OCT), NOV: 2100.0}).estimated is False


def test_thresholds_are_parameters() -> None:
    months = {**steady(100, AUG, SEP, OCT), NOV: 21 * 110}  # +10%, $210 over
    assert review(months).flagged is False
    assert review(months, threshold_percent=5.0).flagged is True
    assert review(months, threshold_percent=5.0, min_dollars=500.0).flagged is False


@pytest.mark.parametrize(
    ("threshold", "dollars"),
    [pytest.param(-1.0, 120.0, id="negative percent"), pytest.param(15.0, float("nan"), id="nan dollars")],
)
def test_bad_thresholds_are_refused(threshold: float, dollars: float) -> None:
    table = cost_rules.CostTable(metric="UnblendedCost", by_account=False)
    with pytest.raises(cost_errors.CostReviewError):
        cost_rules.review_costs(table, NOV_22, threshold_percent=threshold, min_dollars=dollars)


# -- the Cost Explorer query and its pages -------------------------------------------------------------------
def page(period_start: str, period_end: str, groups: dict, estimated: bool = False, token: str | None = None):
    result = {
        "ResultsByTime": [
            {
                "TimePeriod": {"Start": period_start, "End": period_end},
                "Total": {},
                "Groups": [
                    {"Keys": list(keys), "Metrics": {"UnblendedCost": {"Amount": str(amount), "Unit": "USD"}}}
                    for keys, amount in groups.items()
                ],
                "Estimated": estimated,
            }
        ]
    }
    if token:
        result["NextPageToken"] = token
    return result


def test_parse_pages_merges_a_period_continued_on_the_next_page() -> None:
    pages = [
        page("2026-11-01", "2026-11-22", {("Amazon EC2",): 10.5}, estimated=True, token="t1"),
        page("2026-11-01", "2026-11-22", {("Amazon S3",): 2.25}, estimated=True),
        page("2026-10-01", "2026-11-01", {("Amazon EC2",): 31.0, ("Tax",): -1.0}),
    ]
    table = cost_rules.parse_cost_pages(pages, metric="UnblendedCost", by_account=False)
    assert table.amounts == {
        ("", "Amazon EC2"): {NOV: 10.5, OCT: 31.0},
        ("", "Amazon S3"): {NOV: 2.25},
        ("", "Tax"): {OCT: -1.0},
    }
    assert table.estimated_months == {NOV}


def test_parse_pages_refuses_a_missing_metric() -> None:
    with pytest.raises(cost_errors.CostReviewError, match="no AmortizedCost"):
        cost_rules.parse_cost_pages(
            [page("2026-11-01", "2026-11-22", {("EC2",): 1})], metric="AmortizedCost", by_account=False
        )


def test_linked_accounts_are_reviewed_separately() -> None:
    pages = [
        page(f"{month:%Y-%m-%d}", "x", {("111111111111", "Amazon EC2"): 100 * review_period.days_in(month)})
        for month in (AUG, SEP, OCT)
    ]
    pages += [
        page(f"{month:%Y-%m-%d}", "x", {("222222222222", "Amazon EC2"): 100 * review_period.days_in(month)})
        for month in (AUG, SEP, OCT)
    ]
    pages.append(
        page(
            "2026-11-01",
            "2026-11-22",
            {("111111111111", "Amazon EC2"): 2100, ("222222222222", "Amazon EC2"): 4200},
        )
    )
    table = cost_rules.parse_cost_pages(pages, metric="UnblendedCost", by_account=True)
    reviews = cost_rules.review_costs(table, NOV_22, threshold_percent=15, min_dollars=120)
    assert [(r.account, r.flagged) for r in reviews] == [("222222222222", True), ("111111111111", False)]
    assert reviews[0].label == "Amazon EC2 (222222222222)"


def test_review_costs_ranks_flagged_by_dollars() -> None:
    table = cost_rules.CostTable(metric="UnblendedCost", by_account=False)
    table.amounts = {
        ("", "small"): {**steady(10, AUG, SEP, OCT), NOV: 21 * 30},  # +200%, $420
        ("", "big"): {**steady(100, AUG, SEP, OCT), NOV: 21 * 200},  # +100%, $2100
        ("", "quiet"): {**steady(100, AUG, SEP, OCT), NOV: 2100},
    }
    reviews = cost_rules.review_costs(table, NOV_22, threshold_percent=15, min_dollars=120)
    assert [(r.service, r.flagged) for r in reviews] == [("big", True), ("small", True), ("quiet", False)]


def test_cost_query_shapes() -> None:
    plain = cost_rules.cost_query(NOV_22, metric="UnblendedCost", exclude_record_types=["Credit", "Refund"])
    assert plain["TimePeriod"] == {"Start": "2026-08-01", "End": "2026-11-22"}
    assert plain["Granularity"] == "MONTHLY"
    assert plain["GroupBy"] == [{"Type": "DIMENSION", "Key": "SERVICE"}]
    assert plain["Filter"] == {"Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Credit", "Refund"]}}}
    linked = cost_rules.cost_query(
        NOV_22, metric="AmortizedCost", accounts=["111111111111"], exclude_record_types=["Credit"]
    )
    assert [group["Key"] for group in linked["GroupBy"]] == ["LINKED_ACCOUNT", "SERVICE"]
    assert linked["Filter"]["And"][0] == {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": ["111111111111"]}}
    assert "Filter" not in cost_rules.cost_query(NOV_22, metric="UnblendedCost")
    with pytest.raises(cost_errors.CostReviewError, match="metric"):
        cost_rules.cost_query(NOV_22, metric="UsageQuantity")


@pytest.mark.parametrize(
    "accounts",
    [pytest.param(["12345"], id="too short"), pytest.param(["12345678901a"], id="not digits")],
)
def test_validate_accounts_refuses_bad_ids(accounts: list[str]) -> None:
    with pytest.raises(cost_errors.CostReviewError, match="12-digit"):
        cost_rules.validate_accounts(accounts)


def test_validate_accounts_deduplicates() -> None:
    assert cost_rules.validate_accounts([" 111111111111", "111111111111", "222222222222"]) == [
        "111111111111",
        "222222222222",
    ]


# -- rule 2: Cost Anomaly Detection --------------------------------------------------------------------------
def anomaly(anomaly_id: str, total: float, percent: float | None, *, end: str | None = None, expected=None):
    impact = {"MaxImpact": total / 2, "TotalImpact": total}
    if percent is not None:
        impact["TotalImpactPercentage"] = percent
    if expected is not None:
        impact["TotalExpectedSpend"] = expected
        impact["TotalActualSpend"] = expected + total
    result = {
        "AnomalyId": anomaly_id,
        "AnomalyStartDate": "2026-11-19",
        "DimensionValue": "Amazon EC2",
        "RootCauses": [
            {
                "Service": "Amazon EC2",
                "Region": "eu-central-1",
                "LinkedAccount": "111111111111",
                "UsageType": "EUC1-BoxUsage:m5.4xlarge",
                "Impact": {"Contribution": total},
            }
        ],
        "AnomalyScore": {"MaxScore": 0.9, "CurrentScore": 0.8},
        "Impact": impact,
        "MonitorArn": "arn:aws:ce::123456789012:anomalymonitor/m1",
    }
    if end:
        result["AnomalyEndDate"] = end
    return result


@pytest.mark.parametrize(
    ("item", "flagged", "reason_start", "is_open"),
    [
        pytest.param(anomaly("a", 450.0, 60.0), True, "over threshold", True, id="big, no end date: open"),
        pytest.param(anomaly("a", 450.0, 60.0, end="2026-11-21"), True, "over threshold", True, id="ends yesterday"),
        pytest.param(anomaly("a", 450.0, 60.0, end="2026-11-20"), True, "over threshold", False, id="ended"),
        pytest.param(anomaly("a", 100.0, 80.0), False, "impact $100.00 not over $120", True, id="under dollars"),
        pytest.param(anomaly("a", 120.0, 80.0), False, "impact $120.00 not over $120", True, id="exactly $120"),
        pytest.param(anomaly("a", 500.0, 10.0), False, "impact 10.0% not over 15%", True, id="under percent"),
        pytest.param(anomaly("a", 300.0, None), True, "new usage", True, id="no expected spend: judged on $"),
        pytest.param(anomaly("a", 300.0, None, expected=3000.0), False, "impact 10.0%", True, id="percent from spend"),
    ],
)
def test_anomaly_verdicts(item: dict, flagged: bool, reason_start: str, is_open: bool) -> None:
    (result,) = anomaly_rules.review_anomalies(
        [item], since=date(2026, 11, 20), as_of=date(2026, 11, 22), threshold_percent=15, min_dollars=120
    )
    assert result.flagged is flagged
    assert result.reason.startswith(reason_start)
    assert result.open is is_open
    assert result.root_causes[0]["usage_type"] == "EUC1-BoxUsage:m5.4xlarge"


def test_anomalies_ended_before_the_last_review_and_duplicates_are_dropped() -> None:
    items = [anomaly("old", 900, 90, end="2026-11-10"), anomaly("a", 450, 60), anomaly("a", 450, 60)]
    results = anomaly_rules.review_anomalies(
        items, since=date(2026, 11, 20), as_of=date(2026, 11, 22), threshold_percent=15, min_dollars=120
    )
    assert [r.anomaly_id for r in results] == ["a"]


def test_anomaly_query() -> None:
    request = anomaly_rules.anomaly_query(date(2026, 11, 20), date(2026, 11, 23), 120)
    assert request == {
        "DateInterval": {"StartDate": "2026-11-20", "EndDate": "2026-11-23"},
        "TotalImpact": {"NumericOperator": "GREATER_THAN", "StartValue": 120.0},
    }


# -- findings, drafts and the report -------------------------------------------------------------------------
def test_fingerprints_are_stable_per_service_and_month() -> None:
    finding = {"account": "", "service": "Amazon EC2"}
    assert issue_drafts.service_fingerprint(finding, NOV_22) == issue_drafts.service_fingerprint(
        finding, review_period.review_window(date(2026, 11, 27), 3)
    )
    assert issue_drafts.service_fingerprint(finding, NOV_22) != issue_drafts.service_fingerprint(
        finding, review_period.review_window(date(2026, 12, 4), 3)
    )
    assert issue_drafts.service_fingerprint(finding, NOV_22) != issue_drafts.service_fingerprint(
        {**finding, "account": "1"}, NOV_22
    )


def test_drafts_carry_evidence_epic_and_marker() -> None:
    flagged = review({**steady(100, AUG, SEP, OCT), NOV: 21 * 130}).as_dict()
    draft = issue_drafts.service_draft(
        flagged,
        NOV_22,
        epic="#42",
        links={"Run": "http://airflow/run"},
        threshold_percent=15,
        min_dollars=120,
    )
    assert draft["title"] == "AWS cost: Amazon EC2 +30.0% ($630.00 over baseline) in November 2026"
    assert "Part of #42." in draft["body"]
    assert "| 2026-11 | $2,730.00 |" in draft["body"]
    assert "[Run](http://airflow/run)" in draft["body"]
    assert issue_drafts.fingerprint_marker(draft["fingerprint"]) in draft["body"]
    (found,) = anomaly_rules.review_anomalies(
        [anomaly("a", 450.0, 60.0)],
        since=date(2026, 11, 20),
        as_of=date(2026, 11, 22),
        threshold_percent=15,
        min_dollars=120,
    )
    anomaly_draft = issue_drafts.anomaly_draft(found.as_dict(), epic="#42", links={})
    assert "still open" in anomaly_draft["body"]
    assert "EUC1-BoxUsage:m5.4xlarge" in anomaly_draft["body"]
    assert anomaly_draft["fingerprint"] == issue_drafts.fingerprint("anomaly", "a")


def test_report_nothing_to_see_is_brief() -> None:
    message = cost_report.render_report(
        window=NOV_22,
        services=[review({**steady(100, AUG, SEP, OCT), NOV: 2100}).as_dict()],
        anomalies=[],
        services_checked=1,
        anomalies_checked=0,
        since=date(2026, 11, 20),
        threshold_percent=15,
        min_dollars=120,
        metric="UnblendedCost",
    )
    assert "nothing to see" in message["text"]
    assert len(message["blocks"]) == 1


def test_report_ranks_flagged_services() -> None:
    table = cost_rules.CostTable(metric="UnblendedCost", by_account=False)
    table.amounts = {
        ("", "Amazon S3"): {**steady(10, AUG, SEP, OCT), NOV: 21 * 30},
        ("", "Amazon EC2"): {**steady(100, AUG, SEP, OCT), NOV: 21 * 200},
        ("", "AWS Lambda"): {**steady(100, AUG, SEP, OCT), NOV: 2100},
    }
    reviews = [r.as_dict() for r in cost_rules.review_costs(table, NOV_22, threshold_percent=15, min_dollars=120)]
    message = cost_report.render_report(
        window=NOV_22,
        services=reviews,
        anomalies=[],
        services_checked=3,
        anomalies_checked=0,
        since=date(2026, 11, 20),
        threshold_percent=15,
        min_dollars=120,
        metric="UnblendedCost",
        issues=[{"title": "t", "status": "filed", "url": "http://gh/1"}],
        link_hosts={"gh"},
    )
    table_text = message["blocks"][2]["text"]["text"]
    assert table_text.index("Amazon EC2") < table_text.index("Amazon S3")
    assert "AWS Lambda" not in table_text
    assert "+100.0%" in table_text
    assert "$2,100.00" in table_text
    assert "filed <http://gh/1|t>" in message["text"]
    assert "daily run rate" in message["text"]


def test_table_change_cell_says_new_or_not_applicable() -> None:
    new = review({NOV: 500.0}).as_dict()
    credits = review({AUG: -200.0, SEP: -100.0, OCT: -50.0, NOV: 300.0}).as_dict()
    table = cost_report.ranked_table([new, credits], NOV_22).splitlines()
    assert "  new  " in table[1]
    assert "  n/a  " in table[2]
