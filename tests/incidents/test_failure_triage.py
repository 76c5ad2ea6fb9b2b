"""Airflow failure triage: one issue per DAG + task + error signature, to the owner's handle, under the epic; test
DAGs and other environments file nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from toilless.common.alerting import TaskFailure
from toilless.incidents.failure_triage import error_signature, file_issue, plan_issue

SETTINGS = {
    "failure_issues": {
        "environments": ["preprod"],
        "repo": "example-org/infrastructure",
        "epic_issue": 1,
        "label": "airflow-failure",
        "owner_handles": {"sre-orders": "orders-lead"},
        "infrastructure_handle": "platform-oncall",
        "github_conn_id": "github_incidents",
    }
}


def _failure(
    error: str = "order 41 failed after 3 tries",
    dag_id: str = "order_backlog_check",
    owner: str = "sre-orders",
    run_id: str = "manual__1",
) -> TaskFailure:
    return TaskFailure(
        dag_id=dag_id,
        task_id="restart_processor",
        run_id=run_id,
        try_number=3,
        max_tries=3,
        owner=owner,
        error_type="RuntimeError",
        error_first_line=error,
        log_url="http://airflow.local/dags/x/runs/y",
    )


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        pytest.param("order 41 failed", "order 42 failed", True, id="numbers-vary"),
        pytest.param("pod 'orders-7f9c' gone", "pod 'orders-1a2b' gone", True, id="quoted-ids-vary"),
        pytest.param("order 41 failed", "connection refused", False, id="different-error"),
    ],
)
def test_signature_ignores_what_varies_between_occurrences(first: str, second: str, same: bool) -> None:
    one = error_signature("d", "t", "RuntimeError", first)
    assert (one == error_signature("d", "t", "RuntimeError", second)) is same


@pytest.mark.parametrize(
    ("kind", "environment", "dag_id", "assignee"),
    [
        pytest.param("code", "preprod", "order_backlog_check", "orders-lead", id="code-to-owner"),
        pytest.param("infrastructure", "preprod", "order_backlog_check", "platform-oncall", id="infra-to-infra-owner"),
        pytest.param("test", "preprod", "test.example", None, id="test-dag-no-action"),
        pytest.param("code", "prod", "order_backlog_check", None, id="other-environment"),
    ],
)
def test_plan_routes_by_kind_and_environment(kind: str, environment: str, dag_id: str, assignee: str | None) -> None:
    plan = plan_issue(_failure(dag_id=dag_id), kind, environment, SETTINGS)
    if assignee is None:
        assert plan is None
    else:
        assert plan is not None
        assert plan.assignee == assignee
        assert f"assigned to @{assignee}" in plan.body
        assert "Part of #1" in plan.body


def test_owner_without_a_handle_is_said_not_guessed() -> None:
    plan = plan_issue(_failure(owner="unknown-team"), "code", "preprod", SETTINGS)
    assert plan is not None
    assert plan.assignee == ""
    assert "no GitHub handle configured" in plan.body


def test_one_issue_per_signature(fake_github: Any, set_connection: Callable[[str, dict[str, Any]], None]) -> None:
    set_connection("github_incidents", fake_github.connection())
    first = file_issue(plan_issue(_failure("order 41 failed"), "code", "preprod", SETTINGS), SETTINGS)
    again = file_issue(plan_issue(_failure("order 42 failed"), "code", "preprod", SETTINGS), SETTINGS)
    other = file_issue(plan_issue(_failure("disk full on /var"), "code", "preprod", SETTINGS), SETTINGS)
    assert first["filed"] is True
    assert again["filed"] is False
    assert again["url"] == first["url"]
    assert other["filed"] is True
    assert len(fake_github.issues("example-org/infrastructure")) == 2


def test_a_repeated_signature_comments_on_its_issue(
    fake_github: Any, set_connection: Callable[[str, dict[str, Any]], None]
) -> None:
    set_connection("github_incidents", fake_github.connection())
    repo = "example-org/infrastructure"
    first = file_issue(plan_issue(_failure("order 41 failed for <@U41>"), "code", "preprod", SETTINGS), SETTINGS)
    again = file_issue(
        plan_issue(_failure("order 42 failed for <@U42>", run_id="scheduled__2"), "code", "preprod", SETTINGS),
        SETTINGS,
    )

    [issue] = fake_github.issues(repo)
    [comment] = fake_github.comments(repo, issue["number"])
    assert again == {"filed": False, "url": first["url"], "comment_url": comment["html_url"]}
    assert issue["comments"] == 1
    assert ("POST", f"/repos/{repo}/issues/{issue['number']}/comments") in fake_github.requests
    # Which run, which error (outside text escaped like the issue body), where the log is.
    assert "scheduled\\_\\_2" in comment["body"]
    assert "order 42 failed for \\<\\@U42\\>" in comment["body"]
    assert "http://airflow.local/dags/x/runs/y" in comment["body"]
    assert "order 41" not in comment["body"]
