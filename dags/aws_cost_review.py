"""
# AWS cost review (Monday and Friday)

The InfraMeister's billing check (SOPS.md, "AWS cost review"), so a person reads one report instead of
clicking through consoles.

**Fires:** on schedule every Monday and Friday morning (`schedule` in `include/config/aws_cost_review.yaml`,
07:00 Europe/Berlin by default), or by hand from the UI with the Params below. Not alert-triggered.

**Steps**

1. `resolve_review`: settings = `include/config/aws_cost_review.yaml` + Variable `toilless_aws_cost_review` +
   this run's Params. The reviewed month is the month of the day before the as-of date (data is complete up to
   yesterday; on the 1st the previous, complete month is reviewed); the baseline is the previous
   `lookback_months` months. Anomalies are read since the previous review day (Friday for Monday, Monday for
   Friday). Bad input (a malformed date, an account id that is not 12 digits) fails here, nothing is queried.
2. `query_service_costs` (rule 1): ONE Cost Explorer `GetCostAndUsage` query, monthly, grouped by service (and
   by linked account when accounts are given), credits and refunds excluded, followed through every
   `NextPageToken`. Each service's month is compared with its baseline as a **daily run rate**: month-to-date
   spend / days elapsed against the baseline months' spend / their days (short months count their real days).
   Flagged when the rate is up more than `threshold_percent` AND month-to-date spend is more than
   `min_dollars` above baseline. New spend (no history) and baselines wiped out by credits are judged on
   dollars alone; estimated (unfinalised) figures are marked.
3. `query_cost_anomalies` (rule 2): Cost Anomaly Detection `GetAnomalies` since the last review (paginated),
   flagged when total impact is over `min_dollars` and over `threshold_percent`, with root causes (service,
   account, region, usage type) and whether each is still open.
4. `draw_trend_chart`: PNG of each flagged service's monthly spend against its baseline and threshold,
   saved in the run's report folder (`$AIRFLOW_HOME/reports/aws_cost_review/<run_id>/`).
5. `draft_issues`: a Markdown issue draft per flagged finding (title, evidence, links, "Part of" the
   cost-optimisation epic), saved in the report folder.
6. `file_issues`: files each draft to GitHub when the GitHub connection exists, unless an issue with the same
   finding fingerprint already exists (open or closed): a rerun never files twice. `dry_run` files nothing.
   Without a connection the drafts go into the report.
7. `post_report`: Slack report to `finops`: flagged services ranked by dollars (baseline, month to date, run
   rate, change in % and $, why), flagged anomalies, the issues; one line when there is nothing to see.
8. `upload_chart`: attaches the PNG when the Slack API connection is configured.

**Params** (empty = the configured value): `as_of` date, `threshold_percent`, `min_dollars`, `lookback_months`,
`metric` (a Cost Explorer cost metric), `accounts` (linked account ids, reviewed one by one), `dry_run`.

**Told:** the `finops` Slack channel; issues in the configured GitHub repo (connection `github_finops`) under
the epic. Every run also leaves `services.json`, `anomalies.json`, `report.json`, the chart and the drafts in its
report folder, so nothing is lost when Slack or GitHub is unreachable.

**Schedule note:** with `catchup=False` Airflow still runs the latest past slot once when the DAG is first
unpaused (a review as of that Monday or Friday).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag
from airflow.sdk.definitions.timetables.trigger import CronTriggerTimetable

from toilless.common.config import read_defaults
from toilless.common.dag_defaults import default_args, task
from toilless.common.params import dry_run_param, optional_param
from toilless.sops.aws_cost_review import steps
from toilless.sops.aws_cost_review.costs import COST_METRICS

CONFIG = "aws_cost_review"
# A schedule cannot read Variables at parse time: it comes from the YAML file (a plain local read).
_DEFAULTS = read_defaults(CONFIG)
_SCHEDULE = _DEFAULTS["schedule"]


@dag(
    dag_id="aws_cost_review",
    doc_md=__doc__,
    schedule=CronTriggerTimetable(_SCHEDULE["cron"], timezone=_SCHEDULE["timezone"]),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    # One review at a time: two runs filing issues at once could both miss each other's issue.
    max_active_runs=1,
    tags=["finops", "aws", "cost", "sop"],
    default_args=default_args(owner="finops", retries=2, retry_delay=timedelta(minutes=2)),
    params={
        "as_of": optional_param(
            "string",
            "As-of date",
            "Review as of this date (YYYY-MM-DD); data up to the day before is used. "
            "Not after the run's date (there are no costs for the future). Empty: the run's date "
            f"in {_SCHEDULE['timezone']}.",
            format="date",
        ),
        "threshold_percent": optional_param(
            "number",
            "Threshold (%)",
            f"Flag increases over this percent (default {_DEFAULTS['threshold_percent']}).",
            minimum=0,
        ),
        "min_dollars": optional_param(
            "number",
            "Minimum dollars",
            f"...and over this many dollars (default {_DEFAULTS['min_dollars']}).",
            minimum=0,
        ),
        "lookback_months": optional_param(
            "integer",
            "Look-back months",
            f"Months averaged as the baseline (default {_DEFAULTS['lookback_months']}).",
            minimum=1,
            maximum=12,
        ),
        "metric": optional_param(
            "string",
            "Cost metric",
            f"Cost Explorer metric compared (default {_DEFAULTS['metric']}).",
            enum=[None, *COST_METRICS],
        ),
        # An empty list is valid (the configured accounts), so the form must not require the field.
        "accounts": optional_param(
            "array",
            "Linked accounts",
            "Review these linked accounts one by one (12-digit ids). Empty: configured, else the "
            "whole bill by service.",
            default=[],
            items={"type": "string", "pattern": "^[0-9]{12}$"},
        ),
        "dry_run": dry_run_param(),
    },
)
def aws_cost_review() -> None:
    @task
    def resolve_review(**context: Any) -> dict[str, Any]:
        """Settings for this run: YAML + Variable + Params, the review window, the anomaly period."""
        return steps.resolve_review(context)

    # The other tasks are steps.py's functions as they are; doc_md is what the task shows in the UI.
    query_service_costs = task(
        steps.query_service_costs,
        doc_md="Rule 1: one paginated Cost Explorer query, every service compared with its baseline.",
    )
    query_cost_anomalies = task(
        steps.query_cost_anomalies,
        doc_md="Rule 2: Cost Anomaly Detection anomalies since the last review, filtered on % and $.",
    )
    draw_trend_chart = task(
        steps.draw_trend_chart,
        doc_md="PNG of the flagged services' trend against their baseline, saved in the run's report folder.",
    )
    draft_issues = task(
        steps.draft_issues, doc_md="A Markdown issue draft per flagged finding, saved in the run's report folder."
    )
    file_issues = task(
        steps.file_drafts,
        task_id="file_issues",
        doc_md="File each draft once to GitHub (fingerprint checked first); dry run files none.",
    )
    # all_done: a failed chart or GitHub must not keep the cost findings from the person (the run still fails).
    post_report = task(
        steps.post_report,
        trigger_rule="all_done",
        doc_md="The ranked Slack report to the review channel (one line when nothing needs attention).",
    )
    upload_chart = task(
        steps.upload_chart,
        doc_md="Attach the chart when a Slack API connection exists (webhooks cannot carry files).",
    )

    review = resolve_review()
    costs = query_service_costs(review)
    anomalies = query_cost_anomalies(review)
    chart = draw_trend_chart(review, costs)
    drafts = draft_issues(review, costs, anomalies)
    issues = file_issues(review, drafts)
    report = post_report(review, costs, anomalies, chart, issues)
    # upload_chart is the leaf after everything: if drafting or filing failed it does not run, so the run
    # ends failed even though post_report (all_done) reported the findings.
    [report, issues] >> upload_chart(review, chart)


aws_cost_review()
