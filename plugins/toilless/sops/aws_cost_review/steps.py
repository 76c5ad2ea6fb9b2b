"""The cost review's task bodies: read settings, call Cost Explorer and GitHub, save files, post to Slack.

Each task of the DAG ``aws_cost_review`` is one call into this module; the judgement is in the pure modules of this
package. This is the only module of the package that imports Airflow (inside the functions that need it).
"""

from __future__ import annotations

import json
import logging
import os
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from toilless.sops.aws_cost_review import anomalies as anomaly_rules
from toilless.sops.aws_cost_review import chart as trend_chart
from toilless.sops.aws_cost_review import costs as cost_rules
from toilless.sops.aws_cost_review import issues as issue_drafts
from toilless.sops.aws_cost_review import report as cost_report
from toilless.sops.aws_cost_review.settings import CONFIG_NAME, named_errors, resolve_settings
from toilless.sops.aws_cost_review.window import ReviewWindow

log = logging.getLogger(__name__)


def resolve_review(context: Any) -> dict[str, Any]:
    """Task ``resolve_review``: settings = YAML + Variable + this run's Params, the window, the anomaly period."""
    from toilless.common.config import load_config

    return review_settings(load_config(CONFIG_NAME), context["params"], context)


def review_settings(config: dict[str, Any], params: dict[str, Any], context: Any) -> dict[str, Any]:
    """Merge config and Params, validate them, and work out the review window for the run in ``context``.

    Bad input raises :class:`~toilless.sops.aws_cost_review.errors.CostReviewError` (invalid input: the task fails
    at once, without retries), a missing or malformed setting included.
    """
    from toilless.common.reporting import run_url

    with named_errors():
        timezone = ZoneInfo(config["schedule"]["timezone"])
    run_date = context["dag_run"].run_after.astimezone(timezone).date()
    dag_id = context["dag"].dag_id
    run_id = context["run_id"]
    return resolve_settings(
        config,
        params,
        run_date=run_date,
        dag_id=dag_id,
        run_id=run_id,
        run_link=run_url(dag_id, run_id),
        airflow_home=os.environ.get("AIRFLOW_HOME", "~/airflow"),
    )


def query_service_costs(review: dict[str, Any]) -> dict[str, Any]:
    """Task ``query_service_costs`` (rule 1): one paginated Cost Explorer query, every service against its baseline."""
    from toilless.hooks.cost_explorer import CostExplorerHook

    window = ReviewWindow.from_dict(review["window"])
    request = cost_rules.cost_query(
        window,
        metric=review["metric"],
        accounts=review["accounts"],
        exclude_record_types=review["exclude_record_types"],
        today=date.fromisoformat(review["run_date"]),
        history_months=review["cost_history_months"],
    )
    pages = CostExplorerHook(aws_conn_id=review["aws_conn_id"]).get_cost_and_usage_pages(request)
    table = cost_rules.parse_cost_pages(pages, metric=review["metric"], by_account=bool(review["accounts"]))
    reviews = cost_rules.review_costs(
        table, window, threshold_percent=review["threshold_percent"], min_dollars=review["min_dollars"]
    )
    everything = [item.as_dict() for item in reviews]
    save_json(review, "services.json", {"request": request, "pages": len(pages), "services": everything})
    flagged = [item for item in everything if item["flagged"]]
    log.info("%d services reviewed in %d page(s); %d flagged", len(everything), len(pages), len(flagged))
    return {
        "pages": len(pages),
        "services_checked": len(everything),
        "flagged": flagged,
        "estimated_months": sorted(month.isoformat() for month in table.estimated_months),
    }


def query_cost_anomalies(review: dict[str, Any]) -> dict[str, Any]:
    """Task ``query_cost_anomalies`` (rule 2): Cost Anomaly Detection since the last review, filtered on % and $."""
    from toilless.hooks.cost_explorer import CostExplorerHook

    since = date.fromisoformat(review["since"])
    as_of = date.fromisoformat(review["window"]["as_of"])
    request = anomaly_rules.anomaly_query(since, as_of, review["min_dollars"], review["anomaly_monitor_arn"] or None)
    pages = CostExplorerHook(aws_conn_id=review["aws_conn_id"]).get_anomaly_pages(request)
    anomalies = [anomaly for page in pages for anomaly in page.get("Anomalies", [])]
    reviews = anomaly_rules.review_anomalies(
        anomalies,
        since=since,
        as_of=as_of,
        threshold_percent=review["threshold_percent"],
        min_dollars=review["min_dollars"],
    )
    everything = [item.as_dict() for item in reviews]
    save_json(review, "anomalies.json", {"request": request, "pages": len(pages), "anomalies": everything})
    flagged = [item for item in everything if item["flagged"]]
    log.info("%d anomalies since %s in %d page(s); %d flagged", len(everything), since, len(pages), len(flagged))
    return {"pages": len(pages), "anomalies_checked": len(everything), "flagged": flagged}


def draw_trend_chart(review: dict[str, Any], costs: dict[str, Any]) -> str | None:
    """Task ``draw_trend_chart``: PNG of the flagged services against their baseline, in the run's report folder."""
    if not costs["flagged"]:
        log.info("No flagged service: no chart")
        return None
    window = ReviewWindow.from_dict(review["window"])
    path = Path(review["report_dir"]) / "cost_trend.png"
    trend_chart.draw_trend_chart(
        costs["flagged"][: review["chart_max_services"]],
        window,
        path,
        threshold_percent=review["threshold_percent"],
    )
    log.info("Chart saved as %s", path)
    return str(path)


def draft_issues(review: dict[str, Any], costs: dict[str, Any], anomalies: dict[str, Any]) -> list[dict[str, Any]]:
    """Task ``draft_issues``: a Markdown issue draft per flagged finding, saved in the run's report folder."""
    window = ReviewWindow.from_dict(review["window"])
    drafts = issue_drafts.drafts_for_findings(
        costs["flagged"],
        anomalies["flagged"],
        window,
        github=review["github"],
        run_link=review["run_link"],
        console_url=review["console_url"],
        threshold_percent=review["threshold_percent"],
        min_dollars=review["min_dollars"],
    )
    folder = Path(review["report_dir"]) / "issues"
    for draft in drafts:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / issue_drafts.draft_file_name(draft)
        path.write_text(f"# {draft['title']}\n\n{draft['body']}", encoding="utf-8")
        draft["path"] = str(path)
    return drafts


def file_drafts(review: dict[str, Any], drafts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Task ``file_issues``: file what is not filed yet; GitHub is re-read right before creating, so a retry never
    files twice. Dry run files nothing; without a GitHub connection the drafts go into the report."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.sdk import BaseHook

    github = review["github"]
    results = [
        {"fingerprint": d["fingerprint"], "title": d["title"], "path": d["path"], "status": "draft"} for d in drafts
    ]
    if not drafts:
        return results
    conn_id = github.get("conn_id")
    try:
        if not conn_id:
            raise AirflowNotFoundException("no GitHub connection configured")
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        log.info("No GitHub connection %r: %d draft(s) go into the report", conn_id, len(drafts))
        return results

    from toilless.hooks.github_issues import GithubIssueHook

    labels = list(github.get("labels") or [])
    if not labels:
        raise ValueError("github.labels must name at least one label: it is how earlier issues are found")
    hook = GithubIssueHook(github_conn_id=conn_id)
    markers = {issue_drafts.fingerprint_marker(d["fingerprint"]): index for index, d in enumerate(drafts)}
    existing = hook.existing_fingerprints(github["repo"], labels[0], markers)
    for marker, index in markers.items():
        result, draft = results[index], drafts[index]
        if marker in existing:
            result.update(status="exists", url=existing[marker])
        elif review["dry_run"]:
            result["status"] = "dry_run"
        else:
            filed = hook.create_issue(
                github["repo"],
                title=draft["title"],
                body=draft["body"],
                labels=labels,
                epic_issue=int(github.get("epic_issue") or 0),
            )
            result.update(status="filed", url=filed["url"], number=filed["number"])
    return results


def post_report(
    review: dict[str, Any] | None,
    costs: dict[str, Any] | None,
    anomalies: dict[str, Any] | None,
    chart: str | None,
    issues: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """Task ``post_report``: the ranked Slack report to the review channel (one line when nothing needs attention)."""
    from airflow.sdk.exceptions import AirflowSkipException

    from toilless.common.config import load_config
    from toilless.common.reporting import airflow_base_url, post_message
    from toilless.common.slack import allowed_link_hosts

    if review is None or costs is None or anomalies is None:
        # The failed task already raised the alarm; there are no findings to report.
        raise AirflowSkipException("no findings to report: the settings or a Cost Explorer query failed")
    window = ReviewWindow.from_dict(review["window"])
    notes = cost_report.report_notes(review, costs, chart=chart, issues=issues)
    toilless_settings = load_config("toilless")
    message = cost_report.render_report(
        window=window,
        services=costs["flagged"],
        anomalies=anomalies["flagged"],
        services_checked=costs["services_checked"],
        anomalies_checked=anomalies["anomalies_checked"],
        since=date.fromisoformat(review["since"]),
        threshold_percent=review["threshold_percent"],
        min_dollars=review["min_dollars"],
        metric=review["metric"],
        issues=issues or [],
        chart=chart,
        link=review["run_link"],
        notes=notes,
        # The run link and filed issues are linked only to configured hosts (slack.link_hosts, the Airflow UI).
        link_hosts=allowed_link_hosts(toilless_settings, airflow_base_url(toilless_settings)),
    )
    save_json(review, "report.json", message)
    post_message(review["report_channel"], message["text"], blocks=message["blocks"])
    return {"flagged_services": len(costs["flagged"]), "flagged_anomalies": len(anomalies["flagged"])}


def upload_chart(review: dict[str, Any], chart: str | None) -> bool:
    """Task ``upload_chart``: attach the chart when a Slack API connection exists (webhooks cannot carry files)."""
    from toilless.common.reporting import upload_file

    if not chart:
        return False
    return upload_file(review["report_channel"], chart, title="AWS cost review: flagged services vs baseline")


def save_json(review: dict[str, Any], name: str, data: Any) -> None:
    """Save ``data`` in the run's report folder, so nothing is lost when Slack or GitHub is unreachable."""
    folder = Path(review["report_dir"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
