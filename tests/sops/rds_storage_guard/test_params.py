"""The trigger form of rds_storage_guard (issue 13): a Param that may be left empty is optional in the form, and an
emptied field (null) means exactly what the default means."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from toilless.sops.rds_storage_guard import scoping

DAG_FILE = Path(__file__).resolve().parents[3] / "dags" / "rds_storage_guard.py"
#: The Params issue 13 names: empty is valid, yet the form showed them as required.
ISSUE13_PARAMS = [
    pytest.param("instance_ids", id="instance-ids"),
    pytest.param("tag_filter", id="tag-filter"),
    pytest.param("dry_run", id="dry-run"),
]


@pytest.fixture(scope="module")
def dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert not bag.import_errors, bag.import_errors
    return bag.dags["rds_storage_guard"]


def required_in_form(schema: dict[str, Any]) -> bool:
    """Airflow 3.3's trigger form marks a field required when its schema has a type that does not include "null"
    (airflow/ui FlexibleForm: ``!!schema.type && (!Array.isArray(schema.type) || !schema.type.includes("null"))``)."""
    kind = schema.get("type")
    return bool(kind) and (not isinstance(kind, list) or "null" not in kind)


@pytest.mark.parametrize("name", ISSUE13_PARAMS)
def test_issue13_params_are_not_required_in_the_trigger_form(dag: Any, name: str) -> None:
    assert not required_in_form(dag.params.get_param(name).schema), dag.params.get_param(name).schema


def test_no_param_with_a_default_is_required_in_the_trigger_form(dag: Any) -> None:
    required = [name for name, param in dag.params.items() if required_in_form(dag.params.get_param(name).schema)]
    assert required == []


@pytest.mark.parametrize("name", ISSUE13_PARAMS)
def test_an_emptied_field_passes_param_validation(dag: Any, name: str) -> None:
    """The form sends null for a field the user cleared: the run must be accepted, not refused with a 400."""
    # A copy: resolve() stores the value in the Param, and the DAG is shared by this module's tests.
    assert copy.deepcopy(dag.params.get_param(name)).resolve(None) is None


def test_defaults_are_unchanged(dag: Any) -> None:
    defaults = {name: dag.params.get_param(name).value for name in ("instance_ids", "tag_filter", "dry_run")}
    assert defaults == {"instance_ids": [], "tag_filter": {}, "dry_run": False}


@pytest.mark.parametrize(
    "configured",
    [
        pytest.param({}, id="no-configured-scope"),
        pytest.param({"instance_ids": ["orders-db", "billing-db"]}, id="configured-ids"),
        pytest.param({"tag_filter": {"team": "orders"}}, id="configured-tags"),
        pytest.param({"region": "eu-central-1"}, id="configured-region"),
    ],
)
def test_empty_scope_params_mean_the_defaults(configured: dict[str, Any]) -> None:
    settings = {"instance_ids": [], "tag_filter": {}, "region": None, **configured}
    defaults = scoping.run_scope(settings, {"instance_ids": [], "tag_filter": {}, "region": None})
    emptied = scoping.run_scope(settings, {"instance_ids": None, "tag_filter": None, "region": None})
    missing = scoping.run_scope(settings, {})
    assert emptied == defaults == missing
