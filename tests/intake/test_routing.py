"""Routes as data: matchers, route parsing, targets, conf building and the exactly-once identities."""

from __future__ import annotations

from typing import Any

import pytest

from toilless.intake.models import Alert
from toilless.intake.routing import (
    AlertConfError,
    ConfField,
    Matcher,
    Route,
    RouteError,
    RouteTable,
    alert_key,
    build_conf,
    run_id_for,
    target_of,
)


def _alert(**overrides: Any) -> Alert:
    data: dict[str, Any] = {
        "status": "firing",
        "labels": {"alertname": "RDSLowStorage", "dbinstance_identifier": "orders-db", "environment": "prod"},
        "annotations": {"summary": "low"},
        "startsAt": "2026-11-22T03:00:00.123456789Z",
        "fingerprint": "0123456789abcdef",
        "generatorURL": "http://prom/graph",
    }
    data.update(overrides)
    return Alert.model_validate(data)


def _route(**spec: Any) -> Route:
    base: dict[str, Any] = {"name": "r", "dag_id": "rds_storage_guard", "matchers": ['alertname="RDSLowStorage"']}
    base.update(spec)
    return Route.parse(base, 0)


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        pytest.param('alertname="A"', {"alertname": "A"}, True, id="equal"),
        pytest.param('alertname="A"', {"alertname": "AB"}, False, id="equal-is-exact"),
        pytest.param('env!="prod"', {"env": "dev"}, True, id="not-equal"),
        pytest.param('env!="prod"', {}, True, id="not-equal-missing-label"),
        pytest.param('env=~"prod|preprod"', {"env": "preprod"}, True, id="regex"),
        pytest.param('env=~"prod"', {"env": "preprod"}, False, id="regex-is-anchored"),
        pytest.param('env!~"dev.*"', {"env": "prod"}, True, id="not-regex"),
        pytest.param('env=""', {}, True, id="empty-matches-missing"),
        pytest.param("env = prod", {"env": "prod"}, True, id="bare-value-and-spaces"),
        pytest.param(r'msg="say \"hi\""', {"msg": 'say "hi"'}, True, id="escaped-quote"),
    ],
)
def test_matchers_follow_alertmanager_semantics(text: str, labels: dict[str, str], expected: bool) -> None:
    assert Matcher.parse(text).matches(labels) is expected


@pytest.mark.parametrize(
    "text",
    [pytest.param("alertname", id="no-operator"), pytest.param('x=~"("', id="bad-regex"), pytest.param("", id="empty")],
)
def test_bad_matchers_are_refused(text: str) -> None:
    with pytest.raises(RouteError):
        Matcher.parse(text)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param({"dag_id": "x y"}, "dag_id", id="bad-dag-id"),
        pytest.param({"matchers": ['env="prod"']}, "alertname", id="no-alertname-matcher"),
        pytest.param({"on_busy": "wait"}, "on_busy", id="bad-on-busy"),
        pytest.param({"during_maintenance": "ignore"}, "during_maintenance", id="bad-maintenance"),
        pytest.param({"conf": {"alert": "labels.x"}}, "set by the intake", id="reserved-conf-key"),
        pytest.param({"conf": {"x": "metrics.y"}}, "must start with", id="bad-source"),
        pytest.param({"conf": {"x": {"from": "labels.y", "as": "date"}}}, "as must be", id="bad-type"),
        pytest.param({"colour": "red"}, "unknown keys", id="unknown-key"),
        pytest.param({"target": [""]}, "target", id="empty-target-label"),
    ],
)
def test_bad_routes_are_refused_with_the_reason(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(RouteError, match=message):
        _route(**spec)


def test_first_matching_route_wins_and_unmatched_is_none() -> None:
    table = RouteTable.from_data(
        {
            "routes": [
                {"name": "prod", "dag_id": "a", "matchers": ['alertname="X"', 'environment="prod"']},
                {"name": "any", "dag_id": "b", "match": {"alertname": "X"}},
            ]
        }
    )

    assert table.match({"alertname": "X", "environment": "prod"}).name == "prod"
    assert table.match({"alertname": "X", "environment": "dev"}).name == "any"
    assert table.match({"alertname": "Y"}) is None


def test_duplicate_route_names_are_refused() -> None:
    spec = {"name": "same", "dag_id": "a", "match": {"alertname": "X"}}
    with pytest.raises(RouteError, match="unique"):
        RouteTable.from_data({"routes": [spec, spec]})


def test_target_is_built_from_the_target_labels_in_order() -> None:
    route = _route(target=["environment", "dbinstance_identifier"])

    assert target_of(route, _alert()) == "environment=prod,dbinstance_identifier=orders-db"
    assert target_of(_route(), _alert()) == ""
    with pytest.raises(AlertConfError, match="mountpoint"):
        target_of(_route(target=["mountpoint"]), _alert())


def test_conf_carries_the_alert_dry_run_and_mapped_keys() -> None:
    route = _route(
        conf={
            "instance_ids": {"from": "labels.dbinstance_identifier", "as": "list"},
            "summary": "annotations.summary",
            "fingerprint_copy": "alert.fingerprint",
            "threshold": {"value": 90},
            "optional": {"from": "labels.nope", "required": False},
            "with_default": {"from": "labels.nope", "default": "d"},
        }
    )

    conf = build_conf(route, _alert(), "http://am:9093", dry_run=False)

    assert conf["alert"] == {
        "alertname": "RDSLowStorage",
        "status": "firing",
        "labels": {"alertname": "RDSLowStorage", "dbinstance_identifier": "orders-db", "environment": "prod"},
        "annotations": {"summary": "low"},
        "startsAt": "2026-11-22T03:00:00.123456Z",
        "fingerprint": "0123456789abcdef",
        "generatorURL": "http://prom/graph",
        "externalURL": "http://am:9093",
    }
    assert conf["dry_run"] is False
    assert conf["instance_ids"] == ["orders-db"]
    assert conf["summary"] == "low"
    assert conf["fingerprint_copy"] == "0123456789abcdef"
    assert conf["threshold"] == 90
    assert "optional" not in conf
    assert conf["with_default"] == "d"


def test_dry_run_route_forces_dry_run() -> None:
    assert build_conf(_route(dry_run=True), _alert(), "", dry_run=False)["dry_run"] is True


@pytest.mark.parametrize(
    ("as_type", "raw", "expected"),
    [
        pytest.param("int", "42", 42, id="int"),
        pytest.param("float", "0.5", 0.5, id="float"),
        pytest.param("bool", "yes", True, id="bool"),
        pytest.param("csv", "a, b,,c", ["a", "b", "c"], id="csv"),
        pytest.param("list", "one", ["one"], id="list"),
    ],
)
def test_conf_values_are_converted(as_type: str, raw: str, expected: Any) -> None:
    field = ConfField.parse("k", {"from": "labels.v", "as": as_type}, "r")
    assert field.value_for({"labels": {"v": raw}}) == (True, expected)


def test_a_missing_required_label_or_a_bad_number_says_which() -> None:
    with pytest.raises(AlertConfError, match=r"labels\.count"):
        ConfField.parse("count", "labels.count", "r").value_for({"labels": {}})
    with pytest.raises(AlertConfError, match=r"not a valid int"):
        ConfField.parse("count", {"from": "labels.count", "as": "int"}, "r").value_for({"labels": {"count": "x"}})


def test_identity_is_stable_across_replicas_and_differs_per_firing() -> None:
    same_instant_other_format = _alert(startsAt="2026-11-22T04:00:00.123456+01:00")
    later = _alert(startsAt="2026-11-22T05:00:00Z")

    assert alert_key("d", "t", _alert()) == alert_key("d", "t", same_instant_other_format)
    assert alert_key("d", "t", _alert()) != alert_key("d", "t", later)
    assert alert_key("d", "t", _alert()) != alert_key("d", "u", _alert())
    assert alert_key("d", "t", _alert()) != alert_key("e", "t", _alert())
    assert run_id_for("d", "t", _alert()) == run_id_for("d", "t", same_instant_other_format)
    assert run_id_for("d", "t", _alert()) != run_id_for("d", "t", later)


def test_run_id_is_readable_and_allowed_by_airflow() -> None:
    import re

    run_id = run_id_for("rds_storage_guard", "host=a.b/c d..e", _alert(labels={"alertname": "Disk Full/x"}))

    assert run_id.startswith("alert__Disk-Full-x__host-a-b-c-d-e__")
    assert re.match(r"^[A-Za-z0-9_.~:+-]+$", run_id)  # [scheduler] allowed_run_id_pattern
    assert ".." not in run_id
    assert len(run_id) <= 250


def test_the_repository_routes_file_is_valid() -> None:
    from toilless.common.config import include_path

    table = RouteTable.from_file(include_path("alert_routes.yaml"))

    assert {"log_rotation", "rds_storage_guard", "order_backlog_check"} <= table.dag_ids
    assert table.match({"alertname": "RDSLowStorage"}).dag_id == "rds_storage_guard"
    assert table.match({"alertname": "LogMountLowStorage"}).dag_id == "log_rotation"
    assert table.match({"alertname": "OrderBacklogTooHigh"}).dag_id == "order_backlog_check"
