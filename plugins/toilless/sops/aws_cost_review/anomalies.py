"""Rule 2, Cost Anomaly Detection: the GetAnomalies query since the last review and each anomaly's verdict."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

from toilless.common import cost_contracts
from toilless.sops.aws_cost_review.costs import check_thresholds


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
    check_thresholds(threshold_percent, min_dollars)
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
