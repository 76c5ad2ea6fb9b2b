"""Rule 2, Cost Anomaly Detection: each anomaly's verdict and the GetAnomalies request."""

from __future__ import annotations

from datetime import date

import pytest

from tests.sops.aws_cost_review.cases import anomaly, review_anomalies
from toilless.sops.aws_cost_review import anomalies as anomaly_rules


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
    (result,) = review_anomalies([item])
    assert result.flagged is flagged
    assert result.reason.startswith(reason_start)
    assert result.open is is_open
    assert result.root_causes[0]["usage_type"] == "EUC1-BoxUsage:m5.4xlarge"


def test_anomalies_ended_before_the_last_review_and_duplicates_are_dropped() -> None:
    items = [anomaly("old", 900, 90, end="2026-11-10"), anomaly("a", 450, 60), anomaly("a", 450, 60)]
    results = review_anomalies(items)
    assert [r.anomaly_id for r in results] == ["a"]


def test_anomaly_query() -> None:
    request = anomaly_rules.anomaly_query(date(2026, 11, 20), date(2026, 11, 23), 120)
    assert request == {
        "DateInterval": {"StartDate": "2026-11-20", "EndDate": "2026-11-23"},
        "TotalImpact": {"NumericOperator": "GREATER_THAN", "StartValue": 120.0},
    }
