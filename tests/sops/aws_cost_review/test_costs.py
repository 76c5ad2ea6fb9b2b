"""Rule 1, month over baseline per service: each edge case with its expected verdict, and the Cost Explorer query and pages."""

from __future__ import annotations

from datetime import date

import pytest

from tests.sops.aws_cost_review.cases import AUG, NOV, NOV_22, OCT, SEP, baseline_then, review, steady
from toilless.sops.aws_cost_review import costs as cost_rules
from toilless.sops.aws_cost_review import errors as cost_errors
from toilless.sops.aws_cost_review import window as review_period
from toilless.sops.aws_cost_review.costs import OVER_BASELINE


# -- rule 1: month over baseline -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("months", "flagged", "reason", "percent"),
    [
        pytest.param(baseline_then(100, 21 * 100), False, OVER_BASELINE, 0.0, id="steady spend"),
        pytest.param(baseline_then(100, 21 * 130), True, OVER_BASELINE, 30.0, id="over percent and $"),
        pytest.param(baseline_then(100, 21 * 115), False, OVER_BASELINE, 15.0, id="exactly 15% is not over"),
        pytest.param(baseline_then(1, 21 * 2), False, OVER_BASELINE, 100.0, id="over percent, under $"),
        pytest.param(baseline_then(1000, 21 * 1100), False, OVER_BASELINE, 10.0, id="over $ (2100), under percent"),
        pytest.param({NOV: 500.0}, True, cost_rules.NEW_SPEND, None, id="new spend over the minimum dollars"),
        pytest.param({NOV: 50.0}, False, cost_rules.NEW_SPEND, None, id="new spend under the minimum dollars"),
        pytest.param(
            {OCT: 3100.0, NOV: 21 * 100}, False, OVER_BASELINE, 0.0, id="one month of history is the baseline"
        ),
        pytest.param(
            {AUG: -200.0, SEP: -100.0, OCT: -50.0, NOV: 300.0},
            True,
            cost_rules.NO_POSITIVE_BASELINE,
            None,
            id="credits wiped out the baseline: judged on dollars",
        ),
        pytest.param(baseline_then(100, -500.0), False, OVER_BASELINE, -123.8, id="refund this month"),
    ],
)
def test_review_service_verdicts(months: dict[date, float], flagged: bool, reason: str, percent: float | None) -> None:
    result = review(months)
    assert result.flagged is flagged
    assert result.reason == reason
    assert result.change_percent == percent


def test_month_to_date_is_compared_as_daily_run_rate_not_raw() -> None:
    # 21 days at the usual $100/day: raw MTD ($2,100) vs the monthly average ($3,067) would read as -31%.
    result = review(baseline_then(100, 2100.0))
    assert result.change_percent == 0.0
    assert result.change_dollars == 0.0
    assert result.projected_month == 3000.0
    assert result.baseline_month == 3000.0  # $100/day over November's 30 days


def test_dollar_change_is_month_to_date_spend_over_baseline() -> None:
    result = review(baseline_then(100, 21 * 130))
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
    refund = review(baseline_then(100, -500.0))
    assert "credits/refunds this month" in refund.notes


def test_estimated_figures_are_marked() -> None:
    result = review(baseline_then(100, 21 * 130), estimated_months={NOV})
    assert result.estimated is True
    assert "estimated (unfinalised) figures" in result.notes
    assert review(baseline_then(100, 2100.0)).estimated is False


def test_thresholds_are_parameters() -> None:
    months = baseline_then(100, 21 * 110)  # +10%, $210 over
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
        ("", "small"): baseline_then(10, 21 * 30),  # +200%, $420
        ("", "big"): baseline_then(100, 21 * 200),  # +100%, $2100
        ("", "quiet"): baseline_then(100, 2100),
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
