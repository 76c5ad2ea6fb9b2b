"""Filing cost-review issue drafts to a fake GitHub REST server through the GitHub provider (PyGithub over HTTP)."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.aws_cost_review_data import REPO_NAME
from toilless.common.config import read_defaults
from toilless.sops.aws_cost_review.issues import fingerprint, fingerprint_marker
from toilless.sops.aws_cost_review.steps import file_drafts

pytestmark = pytest.mark.integration


def review(dry_run: bool = False, **github: Any) -> dict[str, Any]:
    settings = read_defaults("aws_cost_review")["github"]
    return {"dry_run": dry_run, "github": {**settings, **github}}


def draft(name: str) -> dict[str, Any]:
    key = fingerprint("service", "", name, "2026-11-01")
    return {
        "fingerprint": key,
        "title": f"AWS cost: {name}",
        "body": f"Evidence for {name}.\n\n{fingerprint_marker(key)}\n",
        "path": f"/reports/{name}.md",
    }


def test_files_each_draft_once_under_the_epic(fake_github) -> None:
    epic = fake_github.add_issue(REPO_NAME, "Cost optimisation")
    drafts = [draft("Amazon RDS"), draft("Amazon SageMaker")]

    first = file_drafts(review(), drafts)
    assert [item["status"] for item in first] == ["filed", "filed"]
    filed = fake_github.issues(REPO_NAME)[1:]
    assert [issue["title"] for issue in filed] == ["AWS cost: Amazon RDS", "AWS cost: Amazon SageMaker"]
    assert all(
        {label["name"] for label in issue["labels"]} == {"aws-cost-review", "cost-optimisation"} for issue in filed
    )
    assert fake_github.issues(REPO_NAME)[0]["sub_issue_ids"] == [issue["id"] for issue in filed]
    assert first[0]["url"] == filed[0]["html_url"]

    # A retry or rerun (one more finding now): only the new one is filed.
    second = file_drafts(review(), [*drafts, draft("AWS Lambda")])
    assert [item["status"] for item in second] == ["exists", "exists", "filed"]
    assert len(fake_github.issues(REPO_NAME)) == 4
    assert epic["number"] == 1


def test_closed_issues_count_as_filed(fake_github) -> None:
    fake_github.add_issue(REPO_NAME, "Cost optimisation")
    (result,) = file_drafts(review(), [draft("Amazon RDS")])
    fake_github._issues[REPO_NAME][1]["state"] = "closed"  # someone decided it was expected usage
    (again,) = file_drafts(review(), [draft("Amazon RDS")])
    assert (result["status"], again["status"]) == ("filed", "exists")


def test_dry_run_files_nothing_but_says_what_exists(fake_github) -> None:
    fake_github.add_issue(REPO_NAME, "Cost optimisation")
    file_drafts(review(), [draft("Amazon RDS")])
    before = len(fake_github.requests)
    results = file_drafts(review(dry_run=True), [draft("Amazon RDS"), draft("AWS Lambda")])
    assert [item["status"] for item in results] == ["exists", "dry_run"]
    assert len(fake_github.issues(REPO_NAME)) == 2
    assert [method for method, _ in fake_github.requests[before:]] == ["GET"]  # read, never wrote


def test_without_connection_drafts_stay_in_the_report(monkeypatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_GITHUB_FINOPS", raising=False)
    results = file_drafts(review(), [draft("Amazon RDS")])
    assert results == [
        {
            "fingerprint": draft("Amazon RDS")["fingerprint"],
            "title": "AWS cost: Amazon RDS",
            "path": "/reports/Amazon RDS.md",
            "status": "draft",
        }
    ]


def test_missing_epic_does_not_fail_filing(fake_github) -> None:
    (result,) = file_drafts(review(epic_issue=99), [draft("Amazon RDS")])
    assert result["status"] == "filed"
    assert len(fake_github.issues(REPO_NAME)) == 1
    # Linking under epic #99 got a 404; the filing stands without the sub-issue link.
    assert any("/issues/99" in path for _, path in fake_github.requests)
