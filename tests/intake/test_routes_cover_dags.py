"""The routes file and the DAGs it starts stay in step: every route's DAG exists and accepts the conf the route builds
from a sample alert (Params validation), and every DAG that takes an ``alert`` Param has a route."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from toilless.common.config import include_path
from toilless.intake.models import Alert
from toilless.intake.routing import Route, RouteTable, build_conf

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ROUTES = RouteTable.from_file(include_path("alert_routes.yaml"))


@pytest.fixture(scope="module")
def dags() -> dict[str, Any]:
    """The DAGs of dags/ as the API server holds them (serialized and back), so Params validate the same way."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    bag = DagBag(dag_folder=str(REPO / "dags"))
    return {dag_id: DagSerialization.from_dict(DagSerialization.to_dict(dag)) for dag_id, dag in bag.dags.items()}


def _sample_alert(route: Route) -> Alert:
    """An alert the route matches: its alertname, its target labels and every label its conf maps."""
    alertname = next(m.value for m in route.matchers if m.name == "alertname")
    alertname = re.split(r"[|()]", alertname)[0] or alertname
    labels = {"alertname": alertname}
    for matcher in route.matchers:
        if matcher.name != "alertname" and matcher.op == "=":
            labels[matcher.name] = matcher.value
        elif matcher.name != "alertname" and matcher.op == "=~":
            labels[matcher.name] = re.split(r"[|()]", matcher.value)[0]
    for label in route.target_labels:
        labels.setdefault(label, f"sample-{label}")
    for conf_field in route.conf:
        if conf_field.source and conf_field.source.startswith("labels."):
            labels.setdefault(conf_field.source.split(".", 1)[1], "42")
    alert = Alert.model_validate(
        {
            "status": "firing",
            "labels": labels,
            "annotations": {"summary": "sample"},
            "startsAt": "2026-11-22T03:00:00Z",
            "fingerprint": "5a5a5a5a5a5a5a5a",
        }
    )
    assert route.matches(alert.labels), f"route {route.name}: the sample alert does not match it: {labels}"
    return alert


@pytest.mark.parametrize("route", [pytest.param(route, id=route.name) for route in ROUTES.routes])
def test_each_route_builds_a_conf_its_dag_accepts(route: Route, dags: dict[str, Any]) -> None:
    assert route.dag_id in dags, f"route {route.name} starts {route.dag_id}, which is not in dags/"
    dag = dags[route.dag_id]
    assert "alert" in dag.params, f"{route.dag_id} has no `alert` Param (toilless.common.params.alert_param)"
    assert "dry_run" in dag.params, f"{route.dag_id} has no `dry_run` Param (toilless.common.params.dry_run_param)"

    for dry_run in (False, True):
        conf = build_conf(route, _sample_alert(route), "http://alertmanager:9093", dry_run=dry_run)
        dag.params.deep_merge(conf).validate()  # raises ParamValidationError saying what is wrong


def test_every_alert_triggerable_dag_has_a_route(dags: dict[str, Any]) -> None:
    triggerable = {dag_id for dag_id, dag in dags.items() if "alert" in dag.params}

    assert triggerable, "no DAG takes an `alert` Param: the intake has nothing to start"
    assert triggerable <= ROUTES.dag_ids, (
        f"DAGs without a route in include/alert_routes.yaml: {triggerable - ROUTES.dag_ids}"
    )
