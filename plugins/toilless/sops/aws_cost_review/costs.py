"""Rule 1, month over baseline per service: the Cost Explorer query, its pages, and each service's verdict.

Fair comparison of a month in progress: figures are compared as **daily run rates**. The review month's
month-to-date spend is divided by the days elapsed; the baseline is the look-back months' total spend divided
by their total days (so a 28-day February counts as 28 days, not as a "short" month). The percent change is
the change of the daily rate. The dollar change is what was actually spent over the baseline so far this
month: month-to-date spend minus the baseline daily rate times the days elapsed (a projection to the full
month is shown too, but does not decide).

A finding is flagged when the percent change is over the threshold AND the dollar change is over the minimum.
A service with no usable baseline (new spend, or a baseline wiped out by credits) is flagged on dollars alone.
Plain dicts in (as boto3 returns them), JSON-able verdicts out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from toilless.common import cost_contracts
from toilless.sops.aws_cost_review.errors import CostReviewError
from toilless.sops.aws_cost_review.window import ReviewWindow, check_history, days_in

#: Cost Explorer metrics the review compares (dollars; usage quantities do not add up across services).
COST_METRICS = ("UnblendedCost", "AmortizedCost", "BlendedCost", "NetUnblendedCost", "NetAmortizedCost")


def validate_accounts(accounts: Iterable[str] | None) -> list[str]:
    """Linked account ids (12 digits each), de-duplicated in order; anything else is an error."""
    result: list[str] = []
    for account in accounts or []:
        text = str(account).strip()
        if len(text) != 12 or not text.isdigit():
            raise CostReviewError(f"account {account!r} is not a 12-digit AWS account id")
        if text not in result:
            result.append(text)
    return result


def cost_query(
    window: ReviewWindow,
    *,
    metric: str,
    accounts: Sequence[str] = (),
    exclude_record_types: Sequence[str] = (),
    today: date | None = None,
    history_months: int = cost_contracts.HISTORY_MONTHS_DEFAULT,
) -> dict[str, Any]:
    """The one GetCostAndUsage request of a review (without NextPageToken).

    Monthly granularity from the oldest baseline month to the review day, grouped by service, and by linked
    account first when accounts are named (then filtered to them). Credits and refunds are excluded at the
    source when configured, so they cannot hide a usage increase. The request is checked against the API's
    documented contract (``today``, the run's date, bounds the history) before it is returned.
    """
    if metric not in COST_METRICS:
        raise CostReviewError(f"metric {metric!r} is not one of {', '.join(COST_METRICS)}")
    group_by = [{"Type": "DIMENSION", "Key": "SERVICE"}]
    if accounts:
        group_by.insert(0, {"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"})
    filters: list[dict[str, Any]] = []
    if accounts:
        filters.append({"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": list(accounts)}})
    if exclude_record_types:
        filters.append({"Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": list(exclude_record_types)}}})
    request: dict[str, Any] = {
        "TimePeriod": {"Start": window.query_start.isoformat(), "End": window.query_end.isoformat()},
        "Granularity": "MONTHLY",
        "Metrics": [metric],
        "GroupBy": group_by,
    }
    if len(filters) == 1:
        request["Filter"] = filters[0]
    elif filters:
        request["Filter"] = {"And": filters}
    if today is not None:
        check_history(window, today, history_months)
    cost_contracts.check_get_cost_and_usage(request, today=today, history_months=history_months)
    return request


@dataclass
class CostTable:
    """Spend per (account, service) per month, from every page of one query."""

    metric: str
    by_account: bool
    amounts: dict[tuple[str, str], dict[date, float]] = field(default_factory=dict)
    estimated_months: set[date] = field(default_factory=set)
    unit: str = "USD"


def parse_cost_pages(pages: Iterable[Mapping[str, Any]], *, metric: str, by_account: bool) -> CostTable:
    """Merge GetCostAndUsage pages: a period can continue on the next page with more groups."""
    table = CostTable(metric=metric, by_account=by_account)
    for page in pages:
        for period in page.get("ResultsByTime", []):
            month = date.fromisoformat(period["TimePeriod"]["Start"]).replace(day=1)
            if period.get("Estimated"):
                table.estimated_months.add(month)
            for group in period.get("Groups", []):
                keys = list(group.get("Keys", []))
                if by_account:
                    if len(keys) != 2:
                        raise CostReviewError(f"expected [account, service] group keys, got {keys!r}")
                    key = (keys[0], keys[1])
                else:
                    if len(keys) != 1:
                        raise CostReviewError(f"expected [service] group keys, got {keys!r}")
                    key = ("", keys[0])
                value = group.get("Metrics", {}).get(metric)
                if value is None:
                    raise CostReviewError(f"group {keys!r} has no {metric} metric: wrong metric queried?")
                table.unit = value.get("Unit", table.unit) or table.unit
                months = table.amounts.setdefault(key, {})
                months[month] = months.get(month, 0.0) + float(value["Amount"])
    return table


# -- rule 1: month over baseline -----------------------------------------------------------------------------
NEW_SPEND = "new spend"
NO_POSITIVE_BASELINE = "no positive baseline"
OVER_BASELINE = "over baseline"


@dataclass(frozen=True)
class ServiceReview:
    account: str
    service: str
    history: dict[str, float]  # month (YYYY-MM-01) -> spend, baseline months and the review month
    baseline_months_with_data: int
    baseline_daily: float
    baseline_month: float  # baseline daily rate x days in the review month: the 3-month average, month-equivalent
    current: float  # month to date
    current_daily: float
    projected_month: float  # current daily rate x days in the review month
    change_dollars: float  # month-to-date spend over the baseline daily rate x days elapsed
    change_percent: float | None  # change of the daily rate; None without a positive baseline
    flagged: bool
    reason: str
    notes: tuple[str, ...] = ()
    estimated: bool = False

    @property
    def label(self) -> str:
        return f"{self.service} ({self.account})" if self.account else self.service

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["notes"] = list(self.notes)
        data["label"] = self.label
        return data


def review_service(
    account: str,
    service: str,
    months: Mapping[date, float],
    window: ReviewWindow,
    *,
    threshold_percent: float,
    min_dollars: float,
    estimated_months: Iterable[date] = (),
) -> ServiceReview:
    """Compare one service's review month with its baseline; see the module docstring for the rule."""
    estimated_months = set(estimated_months)
    with_data = [month for month in window.baseline_months if month in months]
    baseline_total = sum(months[month] for month in with_data)
    baseline_days = sum(days_in(month) for month in with_data)
    baseline_daily = baseline_total / baseline_days if baseline_days else 0.0
    current = months.get(window.review_month, 0.0)
    current_daily = current / window.days_elapsed
    change_dollars = current - baseline_daily * window.days_elapsed

    notes: list[str] = []
    if with_data and len(with_data) < len(window.baseline_months):
        notes.append(f"baseline from {len(with_data)} of {len(window.baseline_months)} months (no spend before)")
    if any(months[month] < 0 for month in with_data):
        notes.append("credits/refunds in the baseline")
    if current < 0:
        notes.append("credits/refunds this month")
    estimated = window.review_month in estimated_months or any(month in estimated_months for month in with_data)
    if estimated:
        notes.append("estimated (unfinalised) figures")

    change_percent: float | None
    if baseline_daily > 0:
        change_percent = (current_daily - baseline_daily) / baseline_daily * 100.0
        flagged = change_percent > threshold_percent and change_dollars > min_dollars
        reason = OVER_BASELINE
    else:
        # Without a positive baseline a percentage means nothing: decide on dollars alone.
        change_percent = None
        flagged = current > 0 and change_dollars > min_dollars
        reason = NEW_SPEND if not with_data else NO_POSITIVE_BASELINE
    if current <= 0:
        flagged = False
    history = {month.isoformat(): round(months[month], 2) for month in sorted(months) if month in with_data}
    history[window.review_month.isoformat()] = round(current, 2)
    return ServiceReview(
        account=account,
        service=service,
        history=history,
        baseline_months_with_data=len(with_data),
        baseline_daily=round(baseline_daily, 4),
        baseline_month=round(baseline_daily * window.days_in_month, 2),
        current=round(current, 2),
        current_daily=round(current_daily, 4),
        projected_month=round(current_daily * window.days_in_month, 2),
        change_dollars=round(change_dollars, 2),
        change_percent=None if change_percent is None else round(change_percent, 1),
        flagged=flagged,
        reason=reason,
        notes=tuple(notes),
        estimated=estimated,
    )


def review_costs(
    table: CostTable, window: ReviewWindow, *, threshold_percent: float, min_dollars: float
) -> list[ServiceReview]:
    """Every service reviewed, ranked: flagged first, then by dollars over baseline."""
    check_thresholds(threshold_percent, min_dollars)
    reviews = [
        review_service(
            account,
            service,
            months,
            window,
            threshold_percent=threshold_percent,
            min_dollars=min_dollars,
            estimated_months=table.estimated_months,
        )
        for (account, service), months in table.amounts.items()
    ]
    return sorted(reviews, key=lambda review: (not review.flagged, -review.change_dollars, review.label))


def check_thresholds(threshold_percent: float, min_dollars: float) -> None:
    if not math.isfinite(threshold_percent) or threshold_percent < 0:
        raise CostReviewError(f"threshold percent must be a non-negative number, got {threshold_percent}")
    if not math.isfinite(min_dollars) or min_dollars < 0:
        raise CostReviewError(f"minimum dollars must be a non-negative number, got {min_dollars}")
