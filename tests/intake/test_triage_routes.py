"""Routes that name a triage rule: the intake starts triage_alert (with the runbook it may start), and a rule
that is unknown or whose PromQL does not parse refuses the routes file, naming the route."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from toilless.intake.models import Alert
from toilless.intake.routing import TRIAGE_DAG_ID, RouteError, RouteTable, build_conf, run_id_for

RULES = {
    "rules": {
        "service-5xx": {
            "query": 'sum(increase(http_requests_total{service="{{ labels.service }}", code=~"5.."}[1h]))',
            "noise_at_most": 1,
            "silence_minutes": 60,
        }
    }
}


def routes(**route: Any) -> dict[str, Any]:
    spec = {
        "name": "checkout-5xx",
        "dag_id": "alert_intake_selftest",
        "matchers": ['alertname="Service5xx"'],
        "target": ["service"],
        "conf": {"note": "annotations.summary"},
        "triage": "service-5xx",
    }
    spec.update(route)
    return {"routes": [spec]}


def write(tmp_path: Path, routes_data: dict[str, Any], rules_data: Any = RULES) -> Path:
    (tmp_path / "triage_rules.yaml").write_text(yaml.safe_dump(rules_data), encoding="utf-8")
    path = tmp_path / "alert_routes.yaml"
    path.write_text(yaml.safe_dump(routes_data), encoding="utf-8")
    return path


def alert() -> Alert:
    return Alert.model_validate(
        {
            "status": "firing",
            "labels": {"alertname": "Service5xx", "service": "checkout"},
            "annotations": {"summary": "5xx"},
            "startsAt": "2026-11-22T03:00:00Z",
            "fingerprint": "5a5a5a5a5a5a5a5a",
        }
    )


def test_a_triage_route_starts_triage_alert_with_the_runbooks_conf_and_run_id(tmp_path: Path) -> None:
    table = RouteTable.from_file(write(tmp_path, routes()))
    [route] = table.routes
    assert (route.dag_id, route.runbook_dag_id, route.triage) == (TRIAGE_DAG_ID, "alert_intake_selftest", "service-5xx")
    assert table.dag_ids == {TRIAGE_DAG_ID, "alert_intake_selftest"}

    conf = build_conf(route, alert(), "http://am:9093", dry_run=False)
    assert set(conf) == {"alert", "dry_run", "triage"}
    assert conf["triage"] == {
        "rule": "service-5xx",
        "route": "checkout-5xx",
        "target": "service=checkout",
        "runbook_dag_id": "alert_intake_selftest",
        # The run id the intake would have given the runbook: a retried triage meets the same run.
        "runbook_run_id": run_id_for("alert_intake_selftest", "service=checkout", alert()),
        "runbook_conf": {"note": "5xx"},
    }


def test_routes_without_triage_are_unchanged(tmp_path: Path) -> None:
    table = RouteTable.from_file(write(tmp_path, routes(triage=None), rules_data="not even read"))
    [route] = table.routes
    assert (route.dag_id, route.runbook_dag_id, route.triage) == ("alert_intake_selftest", "", "")
    assert build_conf(route, alert(), "", dry_run=False) == {
        "alert": build_conf(route, alert(), "", dry_run=False)["alert"],
        "dry_run": False,
        "note": "5xx",
    }


def test_promql_that_does_not_parse_refuses_the_routes_naming_the_route(tmp_path: Path) -> None:
    bad = {"rules": {"service-5xx": {**RULES["rules"]["service-5xx"], "query": "sum(rate(x[5m]) by ("}}}
    with pytest.raises(RouteError) as raised:
        RouteTable.from_file(write(tmp_path, routes(), bad))
    assert "route checkout-5xx: triage rule service-5xx: PromQL does not parse" in str(raised.value)
    assert "parse error" in str(raised.value)


def test_an_unknown_rule_refuses_the_routes_naming_the_route(tmp_path: Path) -> None:
    with pytest.raises(RouteError, match=r"route checkout-5xx: triage rule 'typo' is not in triage_rules\.yaml"):
        RouteTable.from_file(write(tmp_path, routes(triage="typo")))


def test_a_malformed_rules_file_names_the_routes_that_need_it(tmp_path: Path) -> None:
    with pytest.raises(RouteError, match=r"route\(s\) checkout-5xx: .*'rules' mapping"):
        RouteTable.from_file(write(tmp_path, routes(), {"rules": []}))


def test_a_route_may_not_map_the_triage_conf_key(tmp_path: Path) -> None:
    with pytest.raises(RouteError, match="conf key 'triage' is set by the intake itself"):
        RouteTable.from_file(write(tmp_path, routes(conf={"triage": "labels.x"})))


@pytest.mark.integration
def test_each_shipped_triage_route_gives_its_runbook_a_conf_the_runbook_accepts() -> None:
    """triage_alert passes ``runbook_conf`` + alert + dry_run to the runbook: it must pass the runbook's Params (the
    intake validates the triage run's conf; this checks the conf of the run triage may start)."""
    import re

    from airflow.dag_processing.dagbag import DagBag

    from toilless.common.config import include_path

    repo = Path(__file__).resolve().parents[2]
    table = RouteTable.from_file(include_path("alert_routes.yaml"))
    triaged = [route for route in table.routes if route.triage]
    assert triaged, "no route in include/alert_routes.yaml names a triage rule"
    for route in triaged:
        bag = DagBag(dag_folder=str(repo / "dags" / f"{route.runbook_dag_id}.py"))
        from airflow.serialization.serialized_objects import DagSerialization

        found = bag.dags.get(route.runbook_dag_id)
        assert found is not None, f"route {route.name}: runbook {route.runbook_dag_id} is not in dags/"
        # As the API server holds it (serialized and back), so Params validate as they will for the real trigger.
        dag = DagSerialization.from_dict(DagSerialization.to_dict(found))
        alertname = re.split(r"[|().*]", next(m.value for m in route.matchers if m.name == "alertname"))[0]
        labels = {"alertname": alertname, **{label: f"sample-{label}" for label in route.target_labels}}
        sample = Alert.model_validate(
            {
                "status": "firing",
                "labels": labels,
                "annotations": {},
                "startsAt": "2026-11-22T03:00:00Z",
                "fingerprint": "5a5a5a5a5a5a5a5a",
            }
        )
        assert route.matches(sample.labels)
        conf = build_conf(route, sample, "http://am:9093", dry_run=False)
        runbook_conf = {**conf["triage"]["runbook_conf"], "alert": conf["alert"], "dry_run": False}
        dag.params.deep_merge(runbook_conf).validate()


@pytest.mark.parametrize(
    ("environment", "triaged", "channel"),
    [
        pytest.param("prod", True, "non_urgent", id="prod-triage-wakes-nobody"),
        pytest.param("prod", False, "urgent", id="prod-runbook-pages"),
        pytest.param("staging", True, "non_urgent", id="staging-triage"),
        pytest.param("staging", False, "non_urgent", id="staging-runbook"),
    ],
)
def test_a_triage_routes_ack_goes_to_the_non_urgent_channel(
    tmp_path: Path, environment: str, triaged: bool, channel: str
) -> None:
    """Noise must page nobody ("one error: acknowledge and go back to sleep"): the intake's ack of an alert that
    triage decides about first is not a page, even in prod; a real problem pages through its runbook."""
    from toilless.intake.settings import IntakeSettings, facts_for

    table = RouteTable.from_file(write(tmp_path, routes(**({} if triaged else {"triage": None}))))
    [route] = table.routes
    settings = IntakeSettings(intake={}, toilless={}, routes=table, window=None)
    firing = alert().model_copy(update={"labels": {**alert().labels, "environment": environment}})
    assert facts_for(firing, "", settings, route)[1] == channel
