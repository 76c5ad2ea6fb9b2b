"""Findings as GitHub issue drafts: stable fingerprints, evidence, the epic and the marker."""

from __future__ import annotations

from datetime import date

from tests.sops.aws_cost_review.cases import (
    NOV_22,
    anomaly,
    baseline_then,
    review,
    review_anomalies,
)
from toilless.sops.aws_cost_review import issues as issue_drafts
from toilless.sops.aws_cost_review import window as review_period


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
    flagged = review(baseline_then(100, 21 * 130)).as_dict()
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
    (found,) = review_anomalies([anomaly("a", 450.0, 60.0)])
    anomaly_draft = issue_drafts.anomaly_draft(found.as_dict(), epic="#42", links={})
    assert "still open" in anomaly_draft["body"]
    assert "EUC1-BoxUsage:m5.4xlarge" in anomaly_draft["body"]
    assert anomaly_draft["fingerprint"] == issue_drafts.fingerprint("anomaly", "a")


def test_drafts_for_findings_link_the_epic_run_and_consoles() -> None:
    flagged = review(baseline_then(100, 21 * 130)).as_dict()
    (found,) = review_anomalies([anomaly("a", 450.0, 60.0)])
    service, anomaly_finding = issue_drafts.drafts_for_findings(
        [flagged],
        [found.as_dict()],
        NOV_22,
        github={"epic_issue": 7, "labels": ["aws-cost-review"]},
        run_link="http://airflow/run",
        console_url="https://console",
        threshold_percent=15,
        min_dollars=120,
    )
    assert "Part of #7 (cost optimisation)." in service["body"]
    assert "[Cost Explorer](https://console#/cost-explorer)" in service["body"]
    assert "Cost Anomaly Detection" not in service["body"]
    assert "[Cost Anomaly Detection](https://console#/anomaly-detection)" in anomaly_finding["body"]
    assert service["labels"] == anomaly_finding["labels"] == ["aws-cost-review"]
    assert issue_drafts.draft_file_name(service) == service["fingerprint"].rsplit("/", 1)[-1] + ".md"
    (no_epic,) = issue_drafts.drafts_for_findings(
        [flagged], [], NOV_22, github={}, run_link="", console_url="", threshold_percent=15, min_dollars=120
    )
    assert "Part of cost optimisation." in no_epic["body"]
