"""The settings of one review: configuration (YAML + Variable) with the run's Params, validated, and the period.

Bad input raises :class:`~toilless.sops.aws_cost_review.errors.CostReviewError` here, before anything is queried
(invalid input: the task fails at once, without retries), a missing or malformed setting included.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from toilless.common.config import FREE, ParamRule, tighten
from toilless.sops.aws_cost_review.anomalies import anomaly_query
from toilless.sops.aws_cost_review.costs import COST_METRICS, cost_query, validate_accounts
from toilless.sops.aws_cost_review.errors import CostReviewError
from toilless.sops.aws_cost_review.window import check_history, parse_as_of, previous_review, review_window

CONFIG_NAME = "aws_cost_review"

#: The Params that replace a configured value. All are reporting thresholds (the review changes nothing), so any
#: valid value is taken (FREE). cost_history_months has no Param but a run's conf could always set it: kept so.
PARAM_RULES = (
    ParamRule("threshold_percent", "threshold_percent", FREE, "flag increases over this percent"),
    ParamRule("min_dollars", "min_dollars", FREE, "and over this many dollars"),
    ParamRule("lookback_months", "lookback_months", FREE, "baseline months"),
    ParamRule("metric", "metric", FREE, "Cost Explorer metric"),
    ParamRule("accounts", "accounts", FREE, "linked accounts reviewed one by one"),
    ParamRule("cost_history_months", "cost_history_months", FREE, "months of Cost Explorer history"),
)


@contextmanager
def named_errors() -> Iterator[None]:
    """Turn a missing key or a non-number in the YAML/Variable/Params into a :class:`CostReviewError` naming it."""
    try:
        yield
    except CostReviewError:
        raise
    except (KeyError, TypeError, ValueError) as err:
        # Invalid input: name it, and do not retry.
        raise CostReviewError(f"aws_cost_review settings or Params are invalid: {type(err).__name__}: {err}") from err


def resolve_settings(
    config: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    run_date: date,
    dag_id: str,
    run_id: str,
    run_link: str,
    airflow_home: str,
) -> dict[str, Any]:
    """Merge config and Params, validate them, and work out the review window (a JSON-able dict for XCom).

    ``run_date`` is the run's date in the schedule's timezone; the other keywords name the run and its report folder.
    """
    with named_errors():
        # An empty list of accounts in the form means "the configured ones", like an empty field.
        given = {name: (None if value == [] else value) for name, value in params.items()}
        merged, _ = tighten(config, given, PARAM_RULES, config_name=CONFIG_NAME)

        def number(name: str, kind: type[int] | type[float]) -> Any:
            value = merged[name]
            try:
                return kind(value)
            except (TypeError, ValueError) as err:
                raise CostReviewError(f"{name} must be a number, got {value!r}") from err

        as_of = parse_as_of(params.get("as_of"), run_date)
        lookback = number("lookback_months", int)
        window = review_window(as_of, lookback)
        history_months = number("cost_history_months", int) if merged.get("cost_history_months") is not None else 13
        check_history(window, run_date, history_months)
        metric = str(merged["metric"])
        if metric not in COST_METRICS:
            raise CostReviewError(f"metric {metric!r} is not one of {', '.join(COST_METRICS)}")
        threshold_percent = number("threshold_percent", float)
        min_dollars = number("min_dollars", float)
        if threshold_percent < 0 or min_dollars < 0:
            raise CostReviewError("threshold percent and minimum dollars must not be negative")
        base = config.get("report_dir") or Path(airflow_home) / "reports" / dag_id
        report_dir = Path(base).expanduser() / re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
        since = previous_review(as_of, config["review_days"])
        accounts = validate_accounts(merged["accounts"])
        exclude_record_types = list(config.get("exclude_record_types") or [])
        anomaly_monitor_arn = config.get("anomaly_monitor_arn") or ""
        # Both Cost Explorer requests are built (and so checked against the API contract) here, in the first task:
        # a request AWS would refuse fails the run at once instead of in a later, retried task.
        cost_query(
            window,
            metric=metric,
            accounts=accounts,
            exclude_record_types=exclude_record_types,
            today=run_date,
            history_months=history_months,
        )
        anomaly_query(since, as_of, min_dollars, anomaly_monitor_arn or None)
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
            "run_link": run_link,
        }
