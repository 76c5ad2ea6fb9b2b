"""The Slack report: brief when nothing is found, flagged services ranked by dollars."""

from __future__ import annotations

from datetime import date

import pytest

from tests.sops.aws_cost_review.cases import AUG, NOV, NOV_22, OCT, SEP, baseline_then, review
from toilless.sops.aws_cost_review import costs as cost_rules
from toilless.sops.aws_cost_review import report as cost_report


def render(services: list[dict], services_checked: int, **extra: object) -> dict:
    """The report of the November review (15% and $120, unblended cost, anomalies since Nov 20, none found)."""
    return cost_report.render_report(
        window=NOV_22,
        services=services,
        anomalies=[],
        services_checked=services_checked,
        anomalies_checked=0,
        since=date(2026, 11, 20),
        threshold_percent=15,
        min_dollars=120,
        metric="UnblendedCost",
        **extra,
    )


def test_report_nothing_to_see_is_brief() -> None:
    message = render([review(baseline_then(100, 2100)).as_dict()], services_checked=1)
    assert "nothing to see" in message["text"]
    assert len(message["blocks"]) == 1


def test_report_ranks_flagged_services() -> None:
    table = cost_rules.CostTable(metric="UnblendedCost", by_account=False)
    table.amounts = {
        ("", "Amazon S3"): baseline_then(10, 21 * 30),
        ("", "Amazon EC2"): baseline_then(100, 21 * 200),
        ("", "AWS Lambda"): baseline_then(100, 2100),
    }
    reviews = [r.as_dict() for r in cost_rules.review_costs(table, NOV_22, threshold_percent=15, min_dollars=120)]
    message = render(
        reviews,
        services_checked=3,
        issues=[{"title": "t", "status": "filed", "url": "http://gh/1"}],
        link_hosts={"gh"},
    )
    table_text = message["blocks"][2]["text"]["text"]
    assert table_text.index("Amazon EC2") < table_text.index("Amazon S3")
    assert "AWS Lambda" not in table_text
    assert "+100.0%" in table_text
    assert "$2,100.00" in table_text
    assert "filed <http://gh/1|t>" in message["text"]
    assert "daily run rate" in message["text"]


def test_table_change_cell_says_new_or_not_applicable() -> None:
    new = review({NOV: 500.0}).as_dict()
    credits = review({AUG: -200.0, SEP: -100.0, OCT: -50.0, NOV: 300.0}).as_dict()
    table = cost_report.ranked_table([new, credits], NOV_22).splitlines()
    assert "  new  " in table[1]
    assert "  n/a  " in table[2]


@pytest.mark.parametrize(
    ("review_changes", "costs_changes", "chart", "issues", "expected"),
    [
        pytest.param({}, {}, "chart.png", [], [], id="nothing to note"),
        pytest.param(
            {},
            {},
            "chart.png",
            None,
            ["Drafting or filing issues FAILED (see the run); findings above are complete."],
            id="drafting or filing failed",
        ),
        pytest.param({}, {"flagged": [{}]}, None, [], ["The chart could not be drawn (see the run)."], id="no chart"),
        pytest.param({}, {}, None, [], [], id="no chart needed when nothing is flagged"),
        pytest.param(
            {"exclude_record_types": ["Credit", "Refund"]}, {}, "c", [], ["Left out: Credit, Refund."], id="left out"
        ),
        pytest.param(
            {}, {"estimated_months": ["2026-11-01"]}, "c", [], ["Estimated (unfinalised): 2026-11."], id="estimated"
        ),
        pytest.param({"dry_run": True}, {}, "c", [], ["Dry run: nothing filed."], id="dry run"),
    ],
)
def test_report_notes_say_what_failed_was_left_out_or_estimated(
    review_changes: dict, costs_changes: dict, chart: str | None, issues: list | None, expected: list[str]
) -> None:
    review_settings = {"exclude_record_types": [], "dry_run": False, **review_changes}
    costs = {"flagged": [], "estimated_months": [], **costs_changes}
    assert cost_report.report_notes(review_settings, costs, chart=chart, issues=issues) == expected
