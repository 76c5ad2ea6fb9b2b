"""The cost review's steps that need Airflow (a task context, Connections); the maths is in cost_review.

Called from the tasks of the DAG ``aws_cost_review``; kept here so they are importable and tested directly.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def review_settings(config: dict[str, Any], params: dict[str, Any], context: Any) -> dict[str, Any]:
    """Merge config and Params, validate them, and work out the review window.

    Bad input raises :class:`~toilless.cost_review.CostReviewError` here (invalid input: the task fails at once,
    without retries), a missing or malformed setting included.
    """
    from toilless import cost_review as cr

    try:
        return _review_settings(config, params, context)
    except cr.CostReviewError:
        raise
    except (KeyError, TypeError, ValueError) as err:
        # A missing key or a non-number in the YAML/Variable: name it, and do not retry.
        raise cr.CostReviewError(
            f"aws_cost_review settings or Params are invalid: {type(err).__name__}: {err}"
        ) from err


def _review_settings(config: dict[str, Any], params: dict[str, Any], context: Any) -> dict[str, Any]:
    import os
    import re
    from pathlib import Path
    from zoneinfo import ZoneInfo

    from toilless import cost_review as cr
    from toilless.common.reporting import run_url

    def chosen(name: str) -> Any:
        value = params.get(name)
        return config[name] if value is None or value == [] else value

    def number(name: str, kind: type[int] | type[float]) -> Any:
        value = chosen(name)
        try:
            return kind(value)
        except (TypeError, ValueError) as err:
            raise cr.CostReviewError(f"{name} must be a number, got {value!r}") from err

    timezone = ZoneInfo(config["schedule"]["timezone"])
    run_after = context["dag_run"].run_after
    run_date = run_after.astimezone(timezone).date()
    as_of = cr.parse_as_of(params.get("as_of"), run_date)
    lookback = number("lookback_months", int)
    window = cr.review_window(as_of, lookback)
    history_months = number("cost_history_months", int) if config.get("cost_history_months") is not None else 13
    cr.check_history(window, run_date, history_months)
    metric = str(chosen("metric"))
    if metric not in cr.COST_METRICS:
        raise cr.CostReviewError(f"metric {metric!r} is not one of {', '.join(cr.COST_METRICS)}")
    threshold_percent = number("threshold_percent", float)
    min_dollars = number("min_dollars", float)
    if threshold_percent < 0 or min_dollars < 0:
        raise cr.CostReviewError("threshold percent and minimum dollars must not be negative")
    dag_id = context["dag"].dag_id
    run_id = context["run_id"]
    base = config.get("report_dir") or Path(os.environ.get("AIRFLOW_HOME", "~/airflow")) / "reports" / dag_id
    report_dir = Path(base).expanduser() / re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    since = cr.previous_review(as_of, config["review_days"])
    accounts = cr.validate_accounts(chosen("accounts"))
    exclude_record_types = list(config.get("exclude_record_types") or [])
    anomaly_monitor_arn = config.get("anomaly_monitor_arn") or ""
    # Both Cost Explorer requests are built (and so checked against the API contract) here, in the first task:
    # a request AWS would refuse fails the run at once instead of in a later, retried task.
    cr.cost_query(
        window,
        metric=metric,
        accounts=accounts,
        exclude_record_types=exclude_record_types,
        today=run_date,
        history_months=history_months,
    )
    cr.anomaly_query(since, as_of, min_dollars, anomaly_monitor_arn or None)
    return {
        "run_date": run_date.isoformat(),
        "cost_history_months": history_months,
        "window": window.as_dict(),
        "describe": window.describe(),
        "since": since.isoformat(),
        "threshold_percent": threshold_percent,
        "min_dollars": min_dollars,
        "lookback_months": lookback,
        "metric": metric,
        "accounts": accounts,
        "exclude_record_types": exclude_record_types,
        "anomaly_monitor_arn": anomaly_monitor_arn,
        "aws_conn_id": config["aws_conn_id"],
        "report_channel": config["report_channel"],
        "report_dir": str(report_dir),
        "chart_max_services": int(config.get("chart_max_services", 6)),
        "console_url": config["console_url"].rstrip("/"),
        "github": dict(config.get("github") or {}),
        "dry_run": bool(params.get("dry_run")),
        "run_link": run_url(dag_id, run_id),
    }


def file_drafts(review: dict[str, Any], drafts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """File what is not filed yet; re-reads GitHub right before creating, so a retry never files twice."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.sdk import BaseHook

    from toilless.cost_review import fingerprint_marker

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
    markers = {fingerprint_marker(d["fingerprint"]): index for index, d in enumerate(drafts)}
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
