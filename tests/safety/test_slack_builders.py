"""Issue 12 defects 4 and 5 for every message builder outside the alert intake: hostile outside text cannot ping a
channel, disguise a link, break out of a code span or leak a secret, and no message exceeds Slack's limits.

Each builder is attacked twice: a table of named hostile inputs, and a seeded, bounded fuzz (the same cases on every
run) that feeds generated hostile strings into every outside field. ``unsafe_parts`` (tests/safety/slack_checks.py)
is the one definition of "safe" for all of them.
"""

from __future__ import annotations

import random
from datetime import date
from typing import Any

import pytest

from tests.safety.slack_checks import HOSTS, hostile_text, unsafe_parts
from toilless.common import slack
from toilless.common.alerting import CODE, FailureRoute, TaskFailure, failure_message, first_line, route_failure
from toilless.common.reporting import render_report
from toilless.notifiers.slack_approval import approval_message
from toilless.sops.aws_cost_review import issues as issue_drafts
from toilless.sops.aws_cost_review import report as cost_report
from toilless.sops.aws_cost_review import window as review_period
from toilless.sops.rds_storage_guard import forecasting, growth_plan
from toilless.sops.rds_storage_guard.report import report_lines

#: Fuzz cases per builder: enough to hit every piece in many combinations, bounded to keep the tier fast.
FUZZ_CASES = 150
FUZZ_SEED = 20261201
WINDOW = review_period.review_window(date(2026, 11, 22), 3)


# -- the builders, each fed from one source of outside text -----------------------------------------------------
def build_failure(text: Any) -> dict[str, Any]:
    failure = TaskFailure(
        dag_id=text(),
        task_id=text(),
        run_id=text(),
        try_number=2,
        max_tries=3,
        owner=text(),
        error_type=text()[:200],
        error_first_line=first_line(RuntimeError(text())),
        log_url=text(),
        map_index=3,
    )
    route = route_failure(failure, {"owner_channels": {}}, "prod")
    return failure_message(failure, route, text(), HOSTS)


def build_approval(text: Any) -> dict[str, Any]:
    return approval_message(subject=text(), body=text(), url=text(), link_hosts=HOSTS)


def build_report(text: Any) -> dict[str, Any]:
    lines = [text() for _ in range(5)] + [slack.mrkdwn("grew {} by {}", slack.code(text()), text())]
    return render_report(
        title=text(), lines=lines, status=text(), dag_id=text(), run_id=text(), link=text(), link_hosts=HOSTS
    )


def build_rds_report(text: Any) -> dict[str, Any]:
    decisions = []
    for action in (
        growth_plan.NONE,
        growth_plan.RECOMMEND_AUTOSCALING,
        growth_plan.REQUEST_APPROVAL,
        growth_plan.GROW_NOW,
        growth_plan.BLOCKED,
    ):
        decisions.append(
            {
                "instance_id": text(),
                "action": action,
                "state": forecasting.CRITICAL,
                "allocated_gib": 100,
                "storage_type": text(),
                "reason": text(),
                "target_gib": 130,
                "blocked_reason": text(),
                "monthly_cost_delta": 3.45,
                "currency": text()[:10],
            }
        )
    plan = {"decisions": decisions, "dry_run": False, "approval_timeout_minutes": 30}
    approval = {"chosen_options": ["Reject"], "responded_by_user": {"name": text()}}
    expansions = [{"instance_id": d["instance_id"], "from_gib": 100, "target_gib": 130} for d in decisions]
    verification = [{"instance_id": d["instance_id"], "status": text(), "allocated_gib": 130} for d in decisions]
    tables = {
        decisions[0]["instance_id"]: {"configured": True, "conn_id": text(), "error": first_line(text())},
        decisions[1]["instance_id"]: {
            "configured": True,
            "conn_id": text(),
            "tables": [{"table": text(), "bytes": 10**9, "growth_bytes_per_day": 10**6}],
        },
    }
    lines = report_lines(plan, approval=approval, expansions=expansions, verification=verification, tables=tables)
    lines.append(f"chart for {text()}: {text()} (no Slack API Connection to upload it)")
    return render_report(
        title=f"RDS storage guard: {text()}", lines=lines, dag_id="rds_storage_guard", run_id=text(),
        link=text(), link_hosts=HOSTS,
    )  # fmt: skip


def build_cost_report(text: Any) -> dict[str, Any]:
    services = [
        {
            "label": text(),
            "baseline_month": 100.0,
            "current": 300.0,
            "projected_month": 400.0,
            "change_percent": 120.0,
            "change_dollars": 200.0,
            "reason": text(),
            "flagged": True,
        }
        for _ in range(3)
    ]
    anomalies = [
        {
            "anomaly_id": text(),
            "total_impact": 500.0,
            "impact_percent": 50.0,
            "start": text(),
            "end": text(),
            "open": False,
            "dimension": text(),
            "root_causes": [{"service": text(), "account": text(), "region": text(), "usage_type": text()}],
            "flagged": True,
        }
        for _ in range(2)
    ]
    issues = [
        {"title": text(), "status": status, "url": text(), "path": text()}
        for status in ("filed", "exists", "dry_run", "draft")
    ]
    return cost_report.render_report(
        window=WINDOW,
        services=services,
        anomalies=anomalies,
        services_checked=7,
        anomalies_checked=2,
        since=date(2026, 11, 20),
        threshold_percent=15,
        min_dollars=100,
        metric=text(),
        issues=issues,
        chart=text(),
        link=text(),
        notes=[text(), text()],
        link_hosts=HOSTS,
    )


BUILDERS = [
    pytest.param(build_failure, id="failure_message"),
    pytest.param(build_approval, id="approval_message"),
    pytest.param(build_report, id="render_report"),
    pytest.param(build_rds_report, id="rds_storage_report"),
    pytest.param(build_cost_report, id="cost_review"),
]


# -- named hostile inputs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize(
    "value",
    [
        pytest.param("<!channel> wake up", id="<!channel>"),
        pytest.param("<https://evil.example|click here>", id="<https://evil.example|click>"),
        pytest.param("fish & chips &lt;!here&gt;", id="&"),
        pytest.param("`x` ` <!channel> `", id="backticks-break-code-spans"),
        pytest.param("```\n<!channel>\n```", id="triple-backticks-break-code-blocks"),
        pytest.param("javascript:alert(1)", id="javascript:"),
        pytest.param("data:text/html;base64,PHNjcmlwdD4=", id="data:"),
        pytest.param("https://airflow.example.com@evil.example/", id="userinfo-url"),
        pytest.param("https://evil.example/dags/x", id="host-not-configured"),
        pytest.param("lone \ud800 surrogate", id="lone-surrogate"),
        pytest.param("ctl \x00\x07\x1b[31m\u202e", id="control-characters"),
        pytest.param("<!channel>" + "A" * 900_000, id="900-kb"),
        pytest.param("postgresql://orders:S3cr3tPw@db.internal:5432/orders", id="connection-uri"),
        pytest.param("Authorization: Bearer abc123def456", id="bearer-token"),
        pytest.param("xoxb-1234567890-abcdefghij", id="xoxb-token"),
        pytest.param("PGPASSWORD=hunter2", id="password="),
        pytest.param("AKIAIOSFODNN7EXAMPLE", id="aws-key"),
    ],
)
def test_builder_is_safe_with_hostile_value_in_every_field(builder: Any, value: str) -> None:
    message = builder(lambda: value)

    assert unsafe_parts(message) == []


def test_render_report_with_20000_lines_is_within_limits_and_says_what_was_cut() -> None:
    message = render_report(title="t", lines=[f"<!channel> line {i}" for i in range(20_000)], link_hosts=HOSTS)

    assert unsafe_parts(message) == []
    assert "19,850 more line(s)" in message["text"]


def test_cost_report_with_20000_findings_is_within_limits() -> None:
    many = [
        {
            "label": f"<!here> service {i}",
            "baseline_month": 1.0,
            "current": 2.0,
            "projected_month": 3.0,
            "change_percent": 100.0,
            "change_dollars": 1.0,
            "reason": "r",
            "flagged": True,
        }
        for i in range(20_000)
    ]
    issues = [
        {"title": f"<!channel> {n}", "status": "filed", "url": "https://github.com/o/r/issues/1"} for n in range(20_000)
    ]

    message = cost_report.render_report(
        window=WINDOW, services=many, anomalies=[], services_checked=20_000, anomalies_checked=0,
        since=date(2026, 11, 20), threshold_percent=1, min_dollars=0, metric="UnblendedCost", issues=issues,
        link_hosts=HOSTS,
    )  # fmt: skip

    assert unsafe_parts(message) == []
    assert "19,980 more issue(s)" in message["blocks"][3]["text"]["text"]


def test_values_in_code_spans_cannot_end_them() -> None:
    # The run id is outside text (a REST caller chooses it): its backticks must not end the span around it.
    failure = TaskFailure("d", "t", "run`<!channel>`x", 1, 1, "o", "E", "boom", "https://airflow.example.com/x")
    message = failure_message(failure, FailureRoute(CODE, "c", "act"), "prod", HOSTS)

    assert "*Run:* `run\u02cb&lt;!channel&gt;\u02cbx`" in message["blocks"][1]["fields"][2]["text"]


def test_trusted_links_stay_links() -> None:
    failure = TaskFailure("d", "t", "r", 1, 1, "o", "E", "boom", "https://airflow.example.com/dags/d/runs/r?a=1&b=2")
    message = failure_message(failure, FailureRoute(CODE, "c", "act"), "prod", HOSTS)

    assert "<https://airflow.example.com/dags/d/runs/r?a=1&amp;b=2|Open the task log>" in message["text"]
    assert unsafe_parts(message) == []


# -- seeded fuzz ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("builder", BUILDERS)
def test_fuzzed_hostile_text_never_makes_an_unsafe_message(builder: Any) -> None:
    rng = random.Random(f"{FUZZ_SEED}-{builder.__name__}")
    failures = []
    for case in range(FUZZ_CASES):
        message = builder(lambda: hostile_text(rng))
        problems = unsafe_parts(message)
        if problems:
            failures.append((case, problems[:3]))
    assert failures == []


def test_issue_drafts_mask_secrets_bound_size_and_keep_the_fingerprint() -> None:
    secret_label = "Amazon RDS postgresql://orders:S3cr3tPw@db password=hunter2 " + "x" * 900_000
    review = {
        "label": secret_label,
        "account": "123456789012",
        "service": secret_label,
        "change_percent": 50.0,
        "reason": "over baseline",
        "change_dollars": 10.0,
        "history": {f"2026-{month:02d}-01": 1.0 for month in range(1, 12)},
        "notes": ["token: abc123def456"],
        "current": 1.0,
        "projected_month": 2.0,
        "baseline_month": 1.0,
    }
    draft = issue_drafts.service_draft(review, WINDOW, epic="#1", links={}, threshold_percent=1, min_dollars=1)

    for secret in ("S3cr3tPw", "hunter2", "abc123def456"):
        assert secret not in draft["title"]
        assert secret not in draft["body"]
    assert len(draft["title"]) <= issue_drafts.GITHUB_TITLE_LIMIT
    assert len(draft["body"]) <= issue_drafts.GITHUB_BODY_LIMIT
    assert draft["body"].rstrip().endswith(issue_drafts.fingerprint_marker(draft["fingerprint"]))


def test_fuzz_is_deterministic() -> None:
    first = [hostile_text(random.Random(FUZZ_SEED)) for _ in range(3)]
    again = [hostile_text(random.Random(FUZZ_SEED)) for _ in range(3)]

    assert first == again
