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

import logging
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Param, dag
from airflow.sdk.definitions.timetables.trigger import CronTriggerTimetable

from toilless.common.config import read_defaults
from toilless.common.dag_defaults import default_args, task
from toilless.common.params import dry_run_param
from toilless.cost_review import COST_METRICS

log = logging.getLogger(__name__)

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
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date",
            title="As-of date",
            description=(
                "Review as of this date (YYYY-MM-DD); data up to the day before is used. "
                "Not after the run's date (there are no costs for the future). Empty: the run's date "
                f"in {_SCHEDULE['timezone']}."
            ),
        ),
        "threshold_percent": Param(
            None,
            type=["null", "number"],
            minimum=0,
            title="Threshold (%)",
            description=f"Flag increases over this percent (default {_DEFAULTS['threshold_percent']}).",
        ),
        "min_dollars": Param(
            None,
            type=["null", "number"],
            minimum=0,
            title="Minimum dollars",
            description=f"...and over this many dollars (default {_DEFAULTS['min_dollars']}).",
        ),
        "lookback_months": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=12,
            title="Look-back months",
            description=f"Months averaged as the baseline (default {_DEFAULTS['lookback_months']}).",
        ),
        "metric": Param(
            None,
            type=["null", "string"],
            enum=[None, *COST_METRICS],
            title="Cost metric",
            description=f"Cost Explorer metric compared (default {_DEFAULTS['metric']}).",
        ),
        "accounts": Param(
            [],
            type="array",
            items={"type": "string", "pattern": "^[0-9]{12}$"},
            title="Linked accounts",
            description="Review these linked accounts one by one (12-digit ids). Empty: configured, else the "
            "whole bill by service.",
        ),
        "dry_run": dry_run_param(),
    },
)
def aws_cost_review() -> None:
    @task
    def resolve_review(**context: Any) -> dict[str, Any]:
        """Settings for this run: YAML + Variable + Params, the review window, the anomaly period."""
        from toilless.common.config import load_config
        from toilless.cost_review_steps import review_settings

        return review_settings(load_config(CONFIG), context["params"], context)

    @task
    def query_service_costs(review: dict[str, Any]) -> dict[str, Any]:
        """Rule 1: one paginated Cost Explorer query, every service compared with its baseline."""
        from datetime import date

        from toilless import cost_review as cr
        from toilless.hooks.cost_explorer import CostExplorerHook

        window = cr.ReviewWindow.from_dict(review["window"])
        request = cr.cost_query(
            window,
            metric=review["metric"],
            accounts=review["accounts"],
            exclude_record_types=review["exclude_record_types"],
            today=date.fromisoformat(review["run_date"]),
            history_months=review["cost_history_months"],
        )
        pages = CostExplorerHook(aws_conn_id=review["aws_conn_id"]).get_cost_and_usage_pages(request)
        table = cr.parse_cost_pages(pages, metric=review["metric"], by_account=bool(review["accounts"]))
        reviews = cr.review_costs(
            table, window, threshold_percent=review["threshold_percent"], min_dollars=review["min_dollars"]
        )
        everything = [item.as_dict() for item in reviews]
        _save_json(review, "services.json", {"request": request, "pages": len(pages), "services": everything})
        flagged = [item for item in everything if item["flagged"]]
        log.info("%d services reviewed in %d page(s); %d flagged", len(everything), len(pages), len(flagged))
        return {
            "pages": len(pages),
            "services_checked": len(everything),
            "flagged": flagged,
            "estimated_months": sorted(month.isoformat() for month in table.estimated_months),
        }

    @task
    def query_cost_anomalies(review: dict[str, Any]) -> dict[str, Any]:
        """Rule 2: Cost Anomaly Detection anomalies since the last review, filtered on % and $."""
        from datetime import date

        from toilless import cost_review as cr
        from toilless.hooks.cost_explorer import CostExplorerHook

        since = date.fromisoformat(review["since"])
        as_of = date.fromisoformat(review["window"]["as_of"])
        request = cr.anomaly_query(since, as_of, review["min_dollars"], review["anomaly_monitor_arn"] or None)
        pages = CostExplorerHook(aws_conn_id=review["aws_conn_id"]).get_anomaly_pages(request)
        anomalies = [anomaly for page in pages for anomaly in page.get("Anomalies", [])]
        reviews = cr.review_anomalies(
            anomalies,
            since=since,
            as_of=as_of,
            threshold_percent=review["threshold_percent"],
            min_dollars=review["min_dollars"],
        )
        everything = [item.as_dict() for item in reviews]
        _save_json(review, "anomalies.json", {"request": request, "pages": len(pages), "anomalies": everything})
        flagged = [item for item in everything if item["flagged"]]
        log.info(
            "%d anomalies since %s in %d page(s); %d flagged",
            len(everything),
            since,
            len(pages),
            len(flagged),
        )
        return {"pages": len(pages), "anomalies_checked": len(everything), "flagged": flagged}

    @task
    def draw_trend_chart(review: dict[str, Any], costs: dict[str, Any]) -> str | None:
        """PNG of the flagged services' trend against their baseline, saved in the run's report folder."""
        from pathlib import Path

        from toilless import cost_chart
        from toilless import cost_review as cr

        if not costs["flagged"]:
            log.info("No flagged service: no chart")
            return None
        window = cr.ReviewWindow.from_dict(review["window"])
        path = Path(review["report_dir"]) / "cost_trend.png"
        cost_chart.draw_trend_chart(
            costs["flagged"][: review["chart_max_services"]],
            window,
            path,
            threshold_percent=review["threshold_percent"],
        )
        log.info("Chart saved as %s", path)
        return str(path)

    @task
    def draft_issues(review: dict[str, Any], costs: dict[str, Any], anomalies: dict[str, Any]) -> list[dict[str, Any]]:
        """A Markdown issue draft per flagged finding, saved in the run's report folder."""
        from pathlib import Path

        from toilless import cost_review as cr

        window = cr.ReviewWindow.from_dict(review["window"])
        github = review["github"]
        epic = f"#{github['epic_issue']} (cost optimisation)" if github.get("epic_issue") else "cost optimisation"
        labels = list(github.get("labels") or [])
        links = {
            "Airflow run": review["run_link"],
            "Cost Explorer": f"{review['console_url']}#/cost-explorer",
        }
        drafts = [
            cr.service_draft(
                item,
                window,
                epic=epic,
                links=links,
                threshold_percent=review["threshold_percent"],
                min_dollars=review["min_dollars"],
                labels=labels,
            )
            for item in costs["flagged"]
        ]
        anomaly_links = {**links, "Cost Anomaly Detection": f"{review['console_url']}#/anomaly-detection"}
        drafts += [
            cr.anomaly_draft(item, epic=epic, links=anomaly_links, labels=labels) for item in anomalies["flagged"]
        ]
        folder = Path(review["report_dir"]) / "issues"
        for draft in drafts:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{draft['fingerprint'].rsplit('/', 1)[-1]}.md"
            path.write_text(f"# {draft['title']}\n\n{draft['body']}", encoding="utf-8")
            draft["path"] = str(path)
        return drafts

    @task
    def file_issues(review: dict[str, Any], drafts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """File each draft once to GitHub (fingerprint checked first); dry run files none."""
        from toilless.cost_review_steps import file_drafts

        return file_drafts(review, drafts)

    # all_done: a failed chart or GitHub must not keep the cost findings from the person (the run still fails).
    @task(trigger_rule="all_done")
    def post_report(
        review: dict[str, Any] | None,
        costs: dict[str, Any] | None,
        anomalies: dict[str, Any] | None,
        chart: str | None,
        issues: list[dict[str, Any]] | None,
    ) -> dict[str, Any]:
        """The ranked Slack report to the review channel (one line when nothing needs attention)."""
        from datetime import date

        from airflow.sdk.exceptions import AirflowSkipException

        from toilless import cost_review as cr
        from toilless.common.config import load_config
        from toilless.common.reporting import airflow_base_url, post_message
        from toilless.common.slack import allowed_link_hosts

        if review is None or costs is None or anomalies is None:
            # The failed task already raised the alarm; there are no findings to report.
            raise AirflowSkipException("no findings to report: the settings or a Cost Explorer query failed")
        window = cr.ReviewWindow.from_dict(review["window"])
        notes = []
        if issues is None:
            issues = []
            notes.append("Drafting or filing issues FAILED (see the run); findings above are complete.")
        if chart is None and costs["flagged"]:
            notes.append("The chart could not be drawn (see the run).")
        if review["exclude_record_types"]:
            notes.append(f"Left out: {', '.join(review['exclude_record_types'])}.")
        if costs["estimated_months"]:
            notes.append(f"Estimated (unfinalised): {', '.join(m[:7] for m in costs['estimated_months'])}.")
        if review["dry_run"]:
            notes.append("Dry run: nothing filed.")
        toilless_settings = load_config("toilless")
        message = cr.render_report(
            window=window,
            services=costs["flagged"],
            anomalies=anomalies["flagged"],
            services_checked=costs["services_checked"],
            anomalies_checked=anomalies["anomalies_checked"],
            since=date.fromisoformat(review["since"]),
            threshold_percent=review["threshold_percent"],
            min_dollars=review["min_dollars"],
            metric=review["metric"],
            issues=issues,
            chart=chart,
            link=review["run_link"],
            notes=notes,
            # The run link and filed issues are linked only to configured hosts (slack.link_hosts, the Airflow UI).
            link_hosts=allowed_link_hosts(toilless_settings, airflow_base_url(toilless_settings)),
        )
        _save_json(review, "report.json", message)
        post_message(review["report_channel"], message["text"], blocks=message["blocks"])
        return {"flagged_services": len(costs["flagged"]), "flagged_anomalies": len(anomalies["flagged"])}

    @task
    def upload_chart(review: dict[str, Any], chart: str | None) -> bool:
        """Attach the chart when a Slack API connection exists (webhooks cannot carry files)."""
        from toilless.common.reporting import upload_file

        if not chart:
            return False
        return upload_file(review["report_channel"], chart, title="AWS cost review: flagged services vs baseline")

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


def _save_json(review: dict[str, Any], name: str, data: Any) -> None:
    import json
    from pathlib import Path

    folder = Path(review["report_dir"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")


aws_cost_review()
