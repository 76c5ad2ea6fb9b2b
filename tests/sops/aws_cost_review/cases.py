"""Shared cases of the cost review's rule tests: a fixed review window, steady spend, a service and an anomaly."""

from __future__ import annotations

from datetime import date

from toilless.sops.aws_cost_review import anomalies as anomaly_rules
from toilless.sops.aws_cost_review import costs as cost_rules
from toilless.sops.aws_cost_review import window as review_period

# November 2026, 21 of 30 days; baseline Aug (31), Sep, Oct (31)
NOV_22 = review_period.review_window(date(2026, 11, 22), 3)
AUG, SEP, OCT, NOV = date(2026, 8, 1), date(2026, 9, 1), date(2026, 10, 1), date(2026, 11, 1)


def steady(daily: float, *months: date) -> dict[date, float]:
    """Spend of ``daily`` dollars a day over whole months."""
    return {month: daily * review_period.days_in(month) for month in months}


def baseline_then(daily: float, november: float) -> dict[date, float]:
    """``daily`` dollars a day from August to October (the baseline of NOV_22), then ``november`` month to date."""
    return {**steady(daily, AUG, SEP, OCT), NOV: november}


def review(
    months: dict[date, float], window: review_period.ReviewWindow = NOV_22, **kwargs
) -> cost_rules.ServiceReview:
    kwargs.setdefault("threshold_percent", 15.0)
    kwargs.setdefault("min_dollars", 120.0)
    return cost_rules.review_service("", "Amazon EC2", months, window, **kwargs)


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


def review_anomalies(items: list[dict]) -> list[anomaly_rules.AnomalyReview]:
    """The anomalies of the November review: since Nov 20, as of Nov 22, over 15% and $120."""
    return anomaly_rules.review_anomalies(
        items, since=date(2026, 11, 20), as_of=date(2026, 11, 22), threshold_percent=15, min_dollars=120
    )
