"""The DAG's Params as the UI form and the settings see them: optional where empty is valid, and their defaults resolve
(a scheduled run uses the defaults) whatever the configuration allows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from toilless.common.config import deep_merge, read_defaults
from toilless.sops.order_backlog_check.settings import resolve_settings

REPO = Path(__file__).resolve().parents[3]
DAG_ID = "order_backlog_check"
#: Params built by toilless.common.params for every SOP; their form schema is that module's (see the report).
SHARED_PARAMS = {"dry_run", "alert"}


@pytest.fixture(scope="module")
def dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / f"{DAG_ID}.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[DAG_ID]


def _form_requires(schema: dict[str, Any]) -> bool:
    # What the Airflow 3 trigger form marks with a red "*": a schema type that does not allow null
    # (airflow/ui FlexibleForm: required = type set and (not a list or no "null" in it)).
    kind = schema.get("type")
    return bool(kind) and (not isinstance(kind, list) or "null" not in kind)


def test_sop_params_with_a_default_are_optional_in_the_form(dag: Any) -> None:
    required = [
        name for name in dag.params if name not in SHARED_PARAMS and _form_requires(dag.params.get_param(name).schema)
    ]
    assert required == []


def test_default_params_resolve_when_the_configuration_switches_restarts_off(dag: Any, tmp_path: Path) -> None:
    """restart.allow: false in the configuration: a scheduled run (all Params at their defaults) diagnoses and
    reports without restarting; the allow_restart default must not count as a Param switching restarts on."""
    config = deep_merge(
        read_defaults(DAG_ID),
        {
            "restart": {"allow": False},
            "log": {"path": str(tmp_path / "order_processing.log"), "allowed_roots": [str(tmp_path)]},
        },
    )
    defaults = {name: dag.params.get_param(name).value for name in dag.params}
    settings = resolve_settings(config, read_defaults("toilless"), defaults)
    assert settings["allow_restart"] is False


def test_default_params_keep_the_configured_restart_policy(dag: Any, tmp_path: Path) -> None:
    config = deep_merge(
        read_defaults(DAG_ID),
        {"log": {"path": str(tmp_path / "order_processing.log"), "allowed_roots": [str(tmp_path)]}},
    )
    defaults = {name: dag.params.get_param(name).value for name in dag.params}
    settings = resolve_settings(config, read_defaults("toilless"), defaults)
    assert settings["allow_restart"] is True
    assert settings["thresholds"] == read_defaults(DAG_ID)["thresholds"]
