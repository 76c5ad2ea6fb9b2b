"""Demo AWS cost data for the cost review: Cost Explorer pages and Cost Anomaly Detection anomalies.

Built for any as-of date (the sandbox seeds "today", tests a fixed Monday). It holds one real anomaly and the
review's edge cases, in two Cost Explorer pages linked by NextPageToken:

- Amazon Relational Database Service: $60/day for three months, $100/day now: the real anomaly (+66.7%).
- Amazon Elastic Compute Cloud - Compute: steady $100/day: within baseline.
- Amazon Simple Storage Service: $1/day to $3/day: +200% but only a few dollars: not flagged.
- AWS Lambda: $500/day to $550/day: hundreds of dollars but +10%: not flagged.
- Amazon SageMaker: new spend ($45/day, no history): flagged on dollars.
- Amazon CloudFront: credits made every baseline month negative, $20/day now: flagged on dollars.
- AWS Key Management Service: history only last month, same rate now: baseline from 1 month, not flagged.
- Amazon Route 53: a refund this month (negative): never flagged.
The month in progress is marked Estimated, as Cost Explorer does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from toilless.sops.aws_cost_review.window import days_in, review_window

ACCOUNT_ID = "111122223333"
REPO_NAME = "example-org/infrastructure"

RDS = "Amazon Relational Database Service"
EC2 = "Amazon Elastic Compute Cloud - Compute"
S3 = "Amazon Simple Storage Service"
LAMBDA = "AWS Lambda"
SAGEMAKER = "Amazon SageMaker"
CLOUDFRONT = "Amazon CloudFront"
KMS = "AWS Key Management Service"
ROUTE53 = "Amazon Route 53"

#: A fixed Monday for tests: November 2026, 22 of 30 days; baseline August-October.
AS_OF = "2026-11-23"
#: What the review of AS_OF flags, ranked by dollars over baseline (SageMaker $990, RDS $880, CloudFront $583).
EXPECTED_FLAGGED = [(SAGEMAKER, "new spend"), (RDS, "over baseline"), (CLOUDFRONT, "no positive baseline")]


def _service_amounts(as_of: date) -> dict[str, dict[date, float]]:
    window = review_window(as_of, 3)
    baseline = window.baseline_months
    current, elapsed = window.review_month, window.days_elapsed

    def daily(rate: float, months: tuple[date, ...]) -> dict[date, float]:
        return {month: rate * days_in(month) for month in months}

    return {
        RDS: {**daily(60, baseline), current: 100 * elapsed},
        EC2: {**daily(100, baseline), current: 100 * elapsed},
        S3: {**daily(1, baseline), current: 3 * elapsed},
        LAMBDA: {**daily(500, baseline), current: 550 * elapsed},
        SAGEMAKER: {current: 45 * elapsed},
        CLOUDFRONT: {baseline[0]: -300.0, baseline[1]: -200.0, baseline[2]: -100.0, current: 20 * elapsed},
        KMS: {**daily(2, baseline[-1:]), current: 2 * elapsed},
        ROUTE53: {**daily(10, baseline), current: -50.0},
    }


def cost_pages(as_of: date | str = AS_OF, metrics: Sequence[str] = ("UnblendedCost",)) -> list[dict[str, Any]]:
    """The GetCostAndUsage answer for a review as of ``as_of``: two pages (moto's queue format: one per call).

    Every metric in ``metrics`` carries the same amounts (the sandbox answers whichever metric a run asks for).
    """
    as_of = date.fromisoformat(as_of) if isinstance(as_of, str) else as_of
    window = review_window(as_of, 3)
    amounts = _service_amounts(as_of)
    services = list(amounts)
    months = [*window.baseline_months, window.review_month]
    pages = []
    for index, chunk in enumerate((services[:4], services[4:])):
        results = []
        for month in months:
            end = window.as_of if month == window.review_month else _next_month(month)
            groups = [
                {
                    "Keys": [service],
                    "Metrics": {
                        metric: {"Amount": f"{amounts[service][month]:.10f}", "Unit": "USD"} for metric in metrics
                    },
                }
                for service in chunk
                if month in amounts[service]
            ]
            results.append(
                {
                    "TimePeriod": {"Start": month.isoformat(), "End": end.isoformat()},
                    "Total": {},
                    "Groups": groups,
                    "Estimated": month == window.review_month,
                }
            )
        page: dict[str, Any] = {
            "GroupDefinitions": [{"Type": "DIMENSION", "Key": "SERVICE"}],
            "ResultsByTime": results,
            "DimensionValueAttributes": [],
        }
        if index == 0:
            page["NextPageToken"] = "services-2"
        pages.append(page)
    return pages


def _next_month(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


def anomaly_pages(as_of: date | str = AS_OF) -> list[dict[str, Any]]:
    """The GetAnomalies answer (two pages): one real anomaly, one under the percent, one under the dollars."""
    as_of = date.fromisoformat(as_of) if isinstance(as_of, str) else as_of
    monitor = f"arn:aws:ce::{ACCOUNT_ID}:anomalymonitor/8c1f0c9e-services"

    def day(offset: int) -> str:
        return (as_of - timedelta(days=offset)).isoformat()

    def anomaly(
        name: str,
        service: str,
        usage_type: str,
        days: tuple[int, int | None],
        scores: tuple[float, float],
        impact: tuple[float, float, float, float, float],
    ) -> dict[str, Any]:
        """An anomaly of one service with one root cause: ``days`` (start, end or None for an open one) before
        as_of, ``scores`` (max, current), ``impact`` (max, total, actual spend, expected spend, percent)."""
        start, end = days
        max_impact, total, actual, expected, percent = impact
        found: dict[str, Any] = {"AnomalyId": f"anomaly-{name}", "AnomalyStartDate": day(start)}
        if end is not None:
            found["AnomalyEndDate"] = day(end)
        return found | {
            "DimensionValue": service,
            "RootCauses": [
                {
                    "Service": service,
                    "Region": "eu-central-1",
                    "LinkedAccount": ACCOUNT_ID,
                    "LinkedAccountName": "production",
                    "UsageType": usage_type,
                    "Impact": {"Contribution": total},
                }
            ],
            "AnomalyScore": {"MaxScore": scores[0], "CurrentScore": scores[1]},
            "Impact": {
                "MaxImpact": max_impact,
                "TotalImpact": total,
                "TotalActualSpend": actual,
                "TotalExpectedSpend": expected,
                "TotalImpactPercentage": percent,
            },
            "MonitorArn": monitor,
        }

    rds = anomaly(
        "rds", RDS, "EUC1-InstanceUsage:db.r6g.2xlarge", (13, None), (0.93, 0.88), (48.0, 450.0, 1170.0, 720.0, 62.5)
    )
    lambda_ = anomaly(
        "lambda", LAMBDA, "EUC1-Lambda-GB-Second", (5, 1), (0.61, 0.4), (70.0, 300.0, 4050.0, 3750.0, 8.0)
    )
    small = anomaly("small", S3, "EUC1-TimedStorage-ByteHrs", (3, 2), (0.7, 0.1), (60.0, 95.0, 332.5, 237.5, 40.0))
    return [{"Anomalies": [rds, lambda_], "NextPageToken": "anomalies-2"}, {"Anomalies": [small]}]
