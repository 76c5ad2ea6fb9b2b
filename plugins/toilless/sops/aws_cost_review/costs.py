"""The AWS cost review SOP as pure logic: month over baseline per service, anomalies, findings, report.

No Airflow or AWS import: the DAG ``aws_cost_review`` feeds this module Cost Explorer pages and Cost Anomaly
Detection anomalies (plain dicts as boto3 returns them) and gets back JSON-able verdicts.

Fair comparison of a month in progress: figures are compared as **daily run rates**. The review month's
month-to-date spend is divided by the days elapsed; the baseline is the look-back months' total spend divided
by their total days (so a 28-day February counts as 28 days, not as a "short" month). The percent change is
the change of the daily rate. The dollar change is what was actually spent over the baseline so far this
month: month-to-date spend minus the baseline daily rate times the days elapsed (a projection to the full
month is shown too, but does not decide).

A finding is flagged when the percent change is over the threshold AND the dollar change is over the minimum.
A service with no usable baseline (new spend, or a baseline wiped out by credits) is flagged on dollars alone.
"""

from __future__ import annotations

import calendar
import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from toilless.common import cost_contracts, slack
from toilless.common.errors import InvalidInput
from toilless.common.redaction import mask_secrets

#: Cost Explorer metrics the review compares (dollars; usage quantities do not add up across services).
COST_METRICS = ("UnblendedCost", "AmortizedCost", "BlendedCost", "NetUnblendedCost", "NetAmortizedCost")
FINGERPRINT_PREFIX = "aws-cost-review"
WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class CostReviewError(InvalidInput):
    """Bad input to the review (a malformed date, threshold or account id); the message says which.

    Invalid input is never retried (see ``toilless.common.errors``).
    """


# -- the review period ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReviewWindow:
    """Which month is reviewed, how much of it has elapsed, and which months form the baseline.

    Data is read up to the day before ``as_of`` (Cost Explorer's end date is exclusive, and the review day
    itself is incomplete). On the 1st of a month the review month is therefore the previous, complete month.
    """

    as_of: date
    review_month: date  # first day of the reviewed month
    days_elapsed: int
    days_in_month: int
    baseline_months: tuple[date, ...]  # first days, oldest first

    @property
    def query_start(self) -> date:
        return self.baseline_months[0]

    @property
    def query_end(self) -> date:
        """Exclusive end of the Cost Explorer query."""
        return self.as_of

    @property
    def complete(self) -> bool:
        return self.days_elapsed == self.days_in_month

    def describe(self) -> str:
        month = f"{self.review_month:%B %Y}"
        span = "complete month" if self.complete else f"{self.days_elapsed} of {self.days_in_month} days"
        months = len(self.baseline_months)
        return (
            f"{month} ({span}, through {self.as_of - timedelta(days=1):%Y-%m-%d}) against the daily run "
            "rate of the "
            f"previous {months} month{'s' if months != 1 else ''} "
            f"({self.baseline_months[0]:%b %Y}-{self.baseline_months[-1]:%b %Y})"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "review_month": self.review_month.isoformat(),
            "days_elapsed": self.days_elapsed,
            "days_in_month": self.days_in_month,
            "baseline_months": [month.isoformat() for month in self.baseline_months],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReviewWindow:
        return cls(
            as_of=date.fromisoformat(data["as_of"]),
            review_month=date.fromisoformat(data["review_month"]),
            days_elapsed=int(data["days_elapsed"]),
            days_in_month=int(data["days_in_month"]),
            baseline_months=tuple(date.fromisoformat(month) for month in data["baseline_months"]),
        )


def days_in(month: date) -> int:
    return calendar.monthrange(month.year, month.month)[1]


def add_months(month: date, count: int) -> date:
    """First day of the month ``count`` months after (or before, if negative) ``month``."""
    index = month.year * 12 + (month.month - 1) + count
    return date(index // 12, index % 12 + 1, 1)


def review_window(as_of: date, lookback_months: int) -> ReviewWindow:
    if not 1 <= lookback_months <= 12:
        raise CostReviewError(f"look-back months must be between 1 and 12, got {lookback_months}")
    last_day = as_of - timedelta(days=1)
    month = last_day.replace(day=1)
    baseline = tuple(add_months(month, -offset) for offset in range(lookback_months, 0, -1))
    return ReviewWindow(
        as_of=as_of,
        review_month=month,
        days_elapsed=last_day.day,
        days_in_month=days_in(month),
        baseline_months=baseline,
    )


def parse_as_of(value: str | date | None, default: date) -> date:
    """The review's as-of date: ``value`` (YYYY-MM-DD) or, when empty, ``default`` (the run's date).

    A date after ``default`` is refused: Cost Explorer has no costs for the future, so the review would compare
    empty months and report an all-clear that means nothing.
    """
    if value in (None, ""):
        return default
    if isinstance(value, date):
        as_of = value
    else:
        text = str(value).strip()
        try:
            as_of = date.fromisoformat(text[:10])
        except ValueError as err:
            raise CostReviewError(f"as-of date {value!r} is not a date (YYYY-MM-DD)") from err
    if as_of > default:
        raise CostReviewError(
            f"as-of date {as_of.isoformat()} is in the future (after the run's date {default.isoformat()}): "
            "Cost Explorer has no costs for it yet, so the review would report a false all-clear"
        )
    return as_of


def check_history(
    window: ReviewWindow, today: date, history_months: int = cost_contracts.HISTORY_MONTHS_DEFAULT
) -> None:
    """Refuse a review whose query starts before the history Cost Explorer holds on ``today`` (the run's date).

    Real AWS answers such a GetCostAndUsage with ValidationException (moto answers it), so the review could never
    succeed: it fails at once with the earliest as-of date that works for this look-back.
    """
    earliest = cost_contracts.earliest_start(today, history_months)
    if window.query_start >= earliest:
        return
    months = len(window.baseline_months)
    # The review month must be ``months`` after ``earliest``; data is read up to the day before as-of.
    earliest_as_of = add_months(earliest, months) + timedelta(days=1)
    raise CostReviewError(
        f"as-of date {window.as_of.isoformat()} with {months} look-back month{'s' if months != 1 else ''} starts "
        f"the Cost Explorer query on {window.query_start.isoformat()}, before the {history_months} months of "
        f"history Cost Explorer holds on the run's date {today.isoformat()} (earliest start "
        f"{earliest.isoformat()}); AWS would refuse it. The earliest as-of for this look-back is "
        f"{earliest_as_of.isoformat()}, or use fewer look-back months"
    )


def previous_review(as_of: date, review_days: Iterable[str | int]) -> date:
    """The last review day strictly before ``as_of`` (Friday for a Monday review, Monday for a Friday one)."""
    weekdays = {_weekday(day) for day in review_days}
    if not weekdays:
        return as_of - timedelta(days=7)
    for offset in range(1, 8):
        candidate = as_of - timedelta(days=offset)
        if candidate.weekday() in weekdays:
            return candidate
    return as_of - timedelta(days=7)  # unreachable: some weekday matches within a week


def _weekday(value: str | int) -> int:
    if isinstance(value, int) and 0 <= value <= 6:
        return value
    name = str(value).strip().lower()[:3]
    for index, day in enumerate(WEEKDAY_NAMES):
        if day.startswith(name) and len(name) == 3:
            return index
    raise CostReviewError(f"unknown weekday {value!r}")


# -- the Cost Explorer query and its answer ------------------------------------------------------------------
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
    _check_thresholds(threshold_percent, min_dollars)
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


def _check_thresholds(threshold_percent: float, min_dollars: float) -> None:
    if not math.isfinite(threshold_percent) or threshold_percent < 0:
        raise CostReviewError(f"threshold percent must be a non-negative number, got {threshold_percent}")
    if not math.isfinite(min_dollars) or min_dollars < 0:
        raise CostReviewError(f"minimum dollars must be a non-negative number, got {min_dollars}")


# -- rule 2: Cost Anomaly Detection --------------------------------------------------------------------------
@dataclass(frozen=True)
class AnomalyReview:
    anomaly_id: str
    monitor_arn: str
    dimension: str
    start: str
    end: str | None
    open: bool
    total_impact: float
    impact_percent: float | None  # None when expected spend was zero (new usage)
    actual_spend: float | None
    expected_spend: float | None
    max_impact: float
    score: float | None
    feedback: str | None
    root_causes: tuple[dict[str, Any], ...]
    flagged: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["root_causes"] = list(self.root_causes)
        return data


def anomaly_query(since: date, as_of: date, min_dollars: float, monitor_arn: str | None = None) -> dict[str, Any]:
    """GetAnomalies request: anomalies seen since the last review, pre-filtered on dollars by AWS."""
    request: dict[str, Any] = {
        "DateInterval": {"StartDate": since.isoformat(), "EndDate": as_of.isoformat()},
        "TotalImpact": {"NumericOperator": "GREATER_THAN", "StartValue": float(min_dollars)},
    }
    if monitor_arn:
        request["MonitorArn"] = monitor_arn
    cost_contracts.check_get_anomalies(request)
    return request


def review_anomalies(
    anomalies: Iterable[Mapping[str, Any]],
    *,
    since: date,
    as_of: date,
    threshold_percent: float,
    min_dollars: float,
) -> list[AnomalyReview]:
    """Anomalies since the last review, each with a verdict; ranked flagged first, then by dollar impact.

    Flagged when total impact is over the minimum dollars AND over the threshold percent (an anomaly on new
    usage has no expected spend and no percentage; it is judged on dollars). An anomaly whose last day is the
    latest day with data (or that has no end date) is still open.
    """
    _check_thresholds(threshold_percent, min_dollars)
    latest_data_day = as_of - timedelta(days=1)
    seen: set[str] = set()
    reviews: list[AnomalyReview] = []
    for anomaly in anomalies:
        anomaly_id = str(anomaly["AnomalyId"])
        if anomaly_id in seen:
            continue
        seen.add(anomaly_id)
        end = anomaly.get("AnomalyEndDate")
        end_day = date.fromisoformat(str(end)[:10]) if end else None
        if end_day is not None and end_day < since:
            continue  # ended before the last review: already reviewed then
        impact = anomaly.get("Impact", {})
        total_impact = float(impact.get("TotalImpact", impact.get("MaxImpact", 0.0)))
        expected = impact.get("TotalExpectedSpend")
        actual = impact.get("TotalActualSpend")
        percent = impact.get("TotalImpactPercentage")
        if percent is None and expected:
            percent = total_impact / float(expected) * 100.0
        over_dollars = total_impact > min_dollars
        over_percent = percent is None or float(percent) > threshold_percent
        if over_dollars and over_percent:
            reason = "new usage (no expected spend)" if percent is None else "over threshold"
        elif not over_dollars:
            reason = f"impact ${total_impact:,.2f} not over ${min_dollars:,.0f}"
        else:
            reason = f"impact {float(percent):.1f}% not over {threshold_percent:g}%"
        score = anomaly.get("AnomalyScore", {})
        reviews.append(
            AnomalyReview(
                anomaly_id=anomaly_id,
                monitor_arn=str(anomaly.get("MonitorArn", "")),
                dimension=str(anomaly.get("DimensionValue", "")),
                start=str(anomaly.get("AnomalyStartDate", ""))[:10],
                end=end_day.isoformat() if end_day else None,
                open=end_day is None or end_day >= latest_data_day,
                total_impact=round(total_impact, 2),
                impact_percent=None if percent is None else round(float(percent), 1),
                actual_spend=None if actual is None else round(float(actual), 2),
                expected_spend=None if expected is None else round(float(expected), 2),
                max_impact=round(float(impact.get("MaxImpact", 0.0)), 2),
                score=score.get("MaxScore"),
                feedback=anomaly.get("Feedback"),
                root_causes=tuple(_root_cause(cause) for cause in anomaly.get("RootCauses", [])),
                flagged=over_dollars and over_percent,
                reason=reason,
            )
        )
    return sorted(reviews, key=lambda review: (not review.flagged, -review.total_impact, review.anomaly_id))


def _root_cause(cause: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "service": cause.get("Service"),
        "account": cause.get("LinkedAccount"),
        "account_name": cause.get("LinkedAccountName"),
        "region": cause.get("Region"),
        "usage_type": cause.get("UsageType"),
        "contribution": (cause.get("Impact") or {}).get("Contribution"),
    }


# -- findings and their issue drafts -------------------------------------------------------------------------
def fingerprint(*parts: str) -> str:
    """Stable id of a finding: the same service in the same month (or the same anomaly) always gets the same
    one."""
    # surrogatepass: an id holding a lone surrogate still gets a fingerprint (the same one as before for valid text).
    digest = hashlib.sha256("|".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{FINGERPRINT_PREFIX}/{digest}"


def service_fingerprint(review: Mapping[str, Any], window: ReviewWindow) -> str:
    return fingerprint("service", review["account"], review["service"], window.review_month.isoformat())


def anomaly_fingerprint(anomaly: Mapping[str, Any]) -> str:
    return fingerprint("anomaly", anomaly["anomaly_id"])


def fingerprint_marker(value: str) -> str:
    """Hidden HTML comment put in an issue body, searched for before filing again."""
    return f"<!-- toilless-fingerprint: {value} -->"


def money(amount: float | None) -> str:
    if amount is None:
        return "n/a"
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


def percent_text(value: float | None) -> str:
    return "new" if value is None else f"{value:+.1f}%"


def service_draft(
    review: Mapping[str, Any],
    window: ReviewWindow,
    *,
    epic: str,
    links: Mapping[str, str],
    threshold_percent: float,
    min_dollars: float,
    labels: Sequence[str] = (),
) -> dict[str, Any]:
    """Markdown issue draft for a flagged service."""
    key = service_fingerprint(review, window)
    change = review["reason"] if review["change_percent"] is None else percent_text(review["change_percent"])
    title = (
        f"AWS cost: {review['label']} {change} ({money(review['change_dollars'])} over baseline) "
        f"in {window.review_month:%B %Y}"
    )
    rows = "\n".join(f"| {month[:7]} | {money(amount)} |" for month, amount in review["history"].items())
    notes = "".join(f"- {note}\n" for note in review["notes"])
    body = (
        f"Part of {epic}.\n\n"
        f"**{review['label']}** spent {money(review['current'])} in {window.review_month:%B %Y} to date "
        f"({window.days_elapsed} of {window.days_in_month} days): {money(review['change_dollars'])} over "
        "its baseline "
        f"so far ({change} on the daily run rate). At this rate the month ends at "
        f"{money(review['projected_month'])} "
        f"against a baseline of {money(review['baseline_month'])}.\n\n"
        f"Why flagged: {review['reason']} (rule: over {threshold_percent:g}% and over "
        f"{money(min_dollars)}).\n\n"
        f"Compared: {window.describe()}.\n\n"
        f"| Month | Spend |\n|---|---|\n{rows}\n\n"
        + (f"Notes:\n{notes}\n" if notes else "")
        + "Decide: expected usage (close with a note) or an inefficiency (plan the fix).\n\n"
        + _links(links)
    )
    return {
        "fingerprint": key,
        "kind": "service",
        "title": _issue_title(title),
        "body": _issue_body(body, key),
        "labels": list(labels),
    }


def anomaly_draft(
    anomaly: Mapping[str, Any], *, epic: str, links: Mapping[str, str], labels: Sequence[str] = ()
) -> dict[str, Any]:
    """Markdown issue draft for a flagged Cost Anomaly Detection anomaly."""
    key = anomaly_fingerprint(anomaly)
    causes = anomaly["root_causes"]
    first = causes[0] if causes else {}
    where = first.get("service") or anomaly["dimension"] or "unknown service"
    title = f"AWS cost anomaly: {where} {money(anomaly['total_impact'])} over expected since {anomaly['start']}"
    cause_rows = "\n".join(
        f"| {c.get('service') or ''} | {c.get('account') or ''} {c.get('account_name') or ''} | "
        f"{c.get('region') or ''} | {c.get('usage_type') or ''} | {money(c.get('contribution'))} |"
        for c in causes
    )
    state = "still open" if anomaly["open"] else f"ended {anomaly['end']}"
    body = (
        f"Part of {epic}.\n\n"
        f"AWS Cost Anomaly Detection anomaly `{anomaly['anomaly_id']}` ({state}), first seen "
        f"{anomaly['start']}: "
        f"total impact {money(anomaly['total_impact'])} ({percent_text(anomaly['impact_percent'])}), actual "
        f"{money(anomaly['actual_spend'])} against expected {money(anomaly['expected_spend'])}.\n\n"
        f"Why flagged: {anomaly['reason']}.\n\n"
        "Root causes:\n\n| Service | Account | Region | Usage type | Contribution |\n|---|---|---|---|---|\n"
        f"{cause_rows or '| (none reported) | | | | |'}\n\n"
        "Decide: expected usage (give AWS the feedback) or an inefficiency (plan the fix).\n\n" + _links(links)
    )
    return {
        "fingerprint": key,
        "kind": "anomaly",
        "title": _issue_title(title),
        "body": _issue_body(body, key),
        "labels": list(labels),
    }


#: GitHub refuses an issue title over 256 characters and a body over 65,536 (one source: the contract module).
GITHUB_TITLE_LIMIT = cost_contracts.GITHUB_TITLE_MAX
GITHUB_BODY_LIMIT = cost_contracts.GITHUB_BODY_MAX


def _issue_title(title: str) -> str:
    # One line: AWS names are outside text, and a title with a newline is not one.
    return slack.truncate(mask_secrets(" ".join(title.split())), GITHUB_TITLE_LIMIT)


def _issue_body(body: str, key: str) -> str:
    """Markdown body with secrets masked and bounded, the fingerprint marker always kept (it is how a retry finds
    the issue it filed)."""
    marker = f"\n{fingerprint_marker(key)}\n"
    return slack.truncate(mask_secrets(body), GITHUB_BODY_LIMIT - len(marker) - 100) + marker


def _links(links: Mapping[str, str]) -> str:
    if not links:
        return ""
    return "Links:\n" + "".join(f"- [{name}]({url})\n" for name, url in links.items() if url)


# -- the Slack report ----------------------------------------------------------------------------------------
def ranked_table(reviews: Sequence[Mapping[str, Any]], window: ReviewWindow, limit: int = 15) -> str:
    """Fixed-width table of flagged services (for a Slack code block)."""
    header = (
        "#",
        "Service",
        "Baseline/mo",
        f"MTD {window.days_elapsed}d",
        "Run-rate/mo",
        "Change",
        "Over $",
        "Why",
    )
    rows = [header]
    for rank, review in enumerate(reviews[:limit], start=1):
        rows.append(
            (
                str(rank),
                _shorten(review["label"], 34),
                money(review["baseline_month"]),
                money(review["current"]),
                money(review["projected_month"]),
                _change_cell(review),
                money(review["change_dollars"]),
                _shorten(review["reason"], 120),
            )
        )
    widths = [max(len(row[col]) for row in rows) for col in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[col]) for col, cell in enumerate(row)).rstrip() for row in rows]
    if len(reviews) > limit:
        lines.append(f"... and {len(reviews) - limit} more (see the run's report files)")
    return "\n".join(lines)


def _change_cell(review: Mapping[str, Any]) -> str:
    if review["change_percent"] is not None:
        return percent_text(review["change_percent"])
    return "new" if review["reason"] == NEW_SPEND else "n/a"


def anomaly_lines(anomalies: Sequence[Mapping[str, Any]], limit: int = 10) -> list[slack.Mrkdwn]:
    """One mrkdwn line per flagged anomaly (root causes and ids are AWS's text: escaped), at most ``limit``."""
    lines = []
    for anomaly in anomalies[:limit]:
        causes = "; ".join(
            " / ".join(
                str(part) for part in (c.get("service"), c.get("account"), c.get("region"), c.get("usage_type")) if part
            )
            for c in anomaly["root_causes"][:3]
        )
        state = "OPEN" if anomaly["open"] else f"ended {anomaly['end']}"
        lines.append(
            slack.mrkdwn(
                "{} ({}) since {}, {}: {} [{}]",
                money(anomaly["total_impact"]),
                percent_text(anomaly["impact_percent"]),
                anomaly["start"],
                state,
                causes or anomaly["dimension"] or "no root cause reported",
                slack.code(anomaly["anomaly_id"], 120),
                limit=300,
            )
        )
    if len(anomalies) > limit:
        lines.append(slack.Mrkdwn(f"... and {len(anomalies) - limit} more"))
    return lines


def _shorten(text: str, limit: int) -> str:
    # Masked before it is cut: half a token is no longer recognisable as one, and would be shown.
    text = mask_secrets(" ".join(text[: limit + 4096].split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_report(
    *,
    window: ReviewWindow,
    services: Sequence[Mapping[str, Any]],
    anomalies: Sequence[Mapping[str, Any]],
    services_checked: int,
    anomalies_checked: int,
    since: date,
    threshold_percent: float,
    min_dollars: float,
    metric: str,
    issues: Sequence[Mapping[str, Any]] = (),
    chart: str | None = None,
    link: str | None = None,
    notes: Sequence[str] = (),
    link_hosts: Iterable[str] = (),
) -> dict[str, Any]:
    """The Slack message: flagged services ranked, flagged anomalies, the issues; one line when nothing is
    found. Built with the common Slack builder: AWS's names, issue titles, paths and notes are escaped, and links
    (the run, filed issues) are links only to ``link_hosts``. Within Slack's limits whatever the input."""
    hosts = frozenset(link_hosts)
    flagged = [review for review in services if review["flagged"]]
    flagged_anomalies = [anomaly for anomaly in anomalies if anomaly["flagged"]]
    rule = f"over {threshold_percent:g}% and over {money(min_dollars)}"
    title = f"AWS cost review {window.review_month:%B %Y} (as of {window.as_of:%a %Y-%m-%d})"
    if not flagged and not flagged_anomalies:
        text = slack.mrkdwn(
            ":white_check_mark: {}: nothing to see. {} services within baseline ({}); {} anomalies since {}, "
            "none significant.",
            title,
            services_checked,
            rule,
            anomalies_checked,
            f"{since:%Y-%m-%d}",
        )
        if link:
            text = slack.mrkdwn("{} {}", text, slack.link(link, "Run", hosts), limit=None)
        return {"text": text, "blocks": [slack.section(text)]}

    summary = slack.mrkdwn(
        ":warning: *{}* of {} services over baseline and *{}* of {} anomalies since {} need attention "
        "(rule: {}, metric {}).",
        len(flagged),
        services_checked,
        len(flagged_anomalies),
        anomalies_checked,
        f"{since:%Y-%m-%d}",
        rule,
        metric,
    )
    method = slack.escape(
        f"Compared: {window.describe()}. Change % = change of the daily run rate; Over $ = month-to-date spend "
        "above the baseline daily rate times the days elapsed; Run-rate/mo = month-to-date projected to the month.",
        1000,
    )
    blocks: list[dict[str, Any]] = [slack.header(title), slack.section(summary)]
    text_parts = [slack.mrkdwn("{}\n{}", title, summary)]
    if flagged:
        table = slack.code_block(ranked_table(flagged, window), 2800)
        blocks.append(slack.section(slack.mrkdwn("*Services over baseline*\n{}", table, limit=None)))
        text_parts.append(table)
    if flagged_anomalies:
        body = slack.Mrkdwn("\n".join(slack.bullets(anomaly_lines(flagged_anomalies), line_limit=None)))
        blocks.append(slack.section(slack.mrkdwn("*Cost Anomaly Detection*\n{}", body, limit=None)))
        text_parts.append(body)
    if issues:
        lines = slack.bullets((_issue_line(issue, hosts) for issue in issues), max_lines=20, what="issue")
        body = slack.mrkdwn("*Issues*\n{}", slack.Mrkdwn("\n".join(lines)), limit=None)
        blocks.append(slack.section(body))
        text_parts.append(body)
    context = [method, *(slack.escape(note, 500) for note in notes[:6])]
    if chart:
        context.append(slack.mrkdwn("Chart: {}", slack.code(chart, 300)))
    if link:
        context.append(slack.link(link, "Open the run", hosts))
    blocks.append(slack.context(*context[: slack.MAX_CONTEXT_ELEMENTS]))
    text_parts.append("\n".join(context))
    text = slack.truncate(slack.Mrkdwn("\n\n".join(text_parts)), slack.MAX_FALLBACK_TEXT)
    return {"text": text, "blocks": blocks}


def _issue_line(issue: Mapping[str, Any], hosts: frozenset[str]) -> slack.Mrkdwn:
    status = issue.get("status")
    url = issue.get("url")
    target = slack.link(url, issue["title"], hosts) if url else slack.escape(issue["title"], 150)
    if status == "filed":
        return slack.mrkdwn("filed {}", target)
    if status == "exists":
        return slack.mrkdwn("already filed {}", target)
    if status == "dry_run":
        return slack.mrkdwn("would file (dry run): {}", target)
    return slack.mrkdwn("draft (no GitHub connection): {}, saved as {}", target, slack.code(issue.get("path", ""), 300))
