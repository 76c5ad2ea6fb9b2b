"""The cost review's settings step: YAML defaults, Params over them, validation before anything is queried."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from toilless.common.config import read_defaults
from toilless.sops.aws_cost_review.errors import CostReviewError
from toilless.sops.aws_cost_review.steps import review_settings

EMPTY_PARAMS = {
    "as_of": None,
    "threshold_percent": None,
    "min_dollars": None,
    "lookback_months": None,
    "metric": None,
    "accounts": [],
    "dry_run": False,
}


def context(run_after: datetime) -> dict[str, Any]:
    return {
        "dag_run": SimpleNamespace(run_after=run_after),
        "dag": SimpleNamespace(dag_id="aws_cost_review"),
        "run_id": "scheduled__2026-11-23T06:00:00+00:00",
    }


def settings(params: dict[str, Any], run_after: datetime | None = None) -> dict[str, Any]:
    moment = run_after or datetime(2026, 11, 23, 6, 0, tzinfo=ZoneInfo("UTC"))
    return review_settings(read_defaults("aws_cost_review"), {**EMPTY_PARAMS, **params}, context(moment))


def test_defaults_come_from_the_yaml() -> None:
    result = settings({})
    assert (result["threshold_percent"], result["min_dollars"], result["lookback_months"]) == (15.0, 120.0, 3)
    assert result["metric"] == "UnblendedCost"
    assert result["window"]["review_month"] == "2026-11-01"
    assert result["since"] == "2026-11-20"  # Monday's review reads anomalies since Friday
    assert result["report_dir"].endswith("reports/aws_cost_review/scheduled__2026-11-23T06_00_00_00_00")


def test_as_of_defaults_to_the_run_date_in_the_schedule_timezone() -> None:
    # 23:30 UTC on Sunday is already Monday in Berlin, the schedule's timezone.
    result = settings({}, datetime(2026, 11, 22, 23, 30, tzinfo=ZoneInfo("UTC")))
    assert result["window"]["as_of"] == "2026-11-23"


def test_params_override_the_yaml() -> None:
    result = settings(
        {
            "as_of": "2026-10-02",
            "threshold_percent": 25,
            "min_dollars": 500,
            "lookback_months": 6,
            "metric": "AmortizedCost",
            "accounts": ["111122223333"],
            "dry_run": True,
        }
    )
    assert result["window"]["review_month"] == "2026-10-01"
    assert len(result["window"]["baseline_months"]) == 6
    assert (result["threshold_percent"], result["min_dollars"], result["metric"]) == (25.0, 500.0, "AmortizedCost")
    assert result["accounts"] == ["111122223333"]
    assert result["dry_run"] is True


@pytest.mark.parametrize(
    ("params", "message"),
    [
        pytest.param({"as_of": "23.11.2026"}, "not a date", id="bad date"),
        pytest.param({"accounts": ["prod"]}, "12-digit", id="bad account"),
        pytest.param({"metric": "UsageQuantity"}, "metric", id="not a cost metric"),
        pytest.param({"min_dollars": -5}, "negative", id="negative dollars"),
        pytest.param({"lookback_months": 24}, "look-back", id="look-back too long"),
    ],
)
def test_bad_input_fails_before_anything_is_queried(params: dict[str, Any], message: str) -> None:
    with pytest.raises(CostReviewError, match=message):
        settings(params)


def test_the_dag_params_are_the_ones_the_step_reads() -> None:
    from pathlib import Path

    from airflow.dag_processing.dagbag import DagBag

    path = Path(__file__).resolve().parents[3] / "dags" / "aws_cost_review.py"
    dag = DagBag(dag_folder=str(path)).dags["aws_cost_review"]
    assert set(dag.params.keys()) == set(EMPTY_PARAMS)
    defaults = dag.params.validate()
    assert defaults == EMPTY_PARAMS
    assert settings(defaults)["metric"] == "UnblendedCost"


#: Shared Params defined in toilless.common.params (outside this SOP's package): the form fix for them is made there.
SHARED_PARAMS = {"dry_run"}


def _required_in_form(schema: dict[str, Any]) -> bool:
    """What Airflow 3.3's trigger form marks required (red *): a schema type that does not allow null."""
    kind = schema.get("type")
    return bool(kind) and (not isinstance(kind, list) or "null" not in kind)


def test_params_with_a_default_are_optional_in_the_form() -> None:
    """Issue 13: an empty Param (e.g. no accounts: the configured ones) is valid, so the form must not require it."""
    from pathlib import Path

    from airflow.dag_processing.dagbag import DagBag

    path = Path(__file__).resolve().parents[3] / "dags" / "aws_cost_review.py"
    dag = DagBag(dag_folder=str(path)).dags["aws_cost_review"]
    required = [
        name
        for name, param in dag.params.items()
        if name not in SHARED_PARAMS and _required_in_form(dag.params.get_param(name).schema)
    ]
    assert required == []


def test_empty_accounts_param_means_the_configured_accounts() -> None:
    assert settings({"accounts": None})["accounts"] == settings({"accounts": []})["accounts"] == []


def _with_config(params: dict[str, Any], **config: Any) -> dict[str, Any]:
    moment = datetime(2026, 11, 23, 6, 0, tzinfo=ZoneInfo("UTC"))
    return review_settings({**read_defaults("aws_cost_review"), **config}, {**EMPTY_PARAMS, **params}, context(moment))


def test_history_limit_counts_from_the_run_date_and_honours_multi_year_data() -> None:
    """#10: relative to the run (2026-11-23): 13 months start 2025-11-01, so a 3-month look-back needs as-of
    2026-02-02 or later; with multi-year data (38 months) a 2025 as-of is served."""
    assert _with_config({"as_of": "2026-02-02"})["run_date"] == "2026-11-23"
    with pytest.raises(CostReviewError, match="earliest as-of for this look-back is 2026-02-02"):
        _with_config({"as_of": "2026-02-01"})
    assert _with_config({"as_of": "2025-03-10"}, cost_history_months=38)["cost_history_months"] == 38


@pytest.mark.parametrize(
    ("config", "message"),
    [
        pytest.param({"cost_history_months": 24}, "multi-year", id="history-not-13-or-38"),
        pytest.param({"cost_history_months": "lots"}, "cost_history_months must be a number", id="history-not-number"),
        pytest.param({"anomaly_monitor_arn": "my-monitor"}, "anomaly monitor ARN", id="bad-monitor-arn"),
    ],
)
def test_bad_cost_explorer_config_fails_in_the_settings_step(config: dict[str, Any], message: str) -> None:
    from toilless.common.errors import InvalidInput

    with pytest.raises(InvalidInput, match=message):
        _with_config({}, **config)
