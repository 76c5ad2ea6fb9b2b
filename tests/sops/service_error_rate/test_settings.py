"""Settings: only configured services, Params only tighten, PromQL checked offline before anything is read."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from toilless.common.config import read_defaults
from toilless.common.errors import InvalidInput
from toilless.sops.service_error_rate.settings import render_queries, resolve


@pytest.fixture
def config() -> dict[str, Any]:
    return copy.deepcopy(read_defaults("service_error_rate"))


def test_shipped_configuration_resolves(config: dict[str, Any]) -> None:
    settings = resolve(config, {})
    assert settings["service"]["key"] == "shop/checkout"
    assert settings["prometheus"]["window_seconds"] == 3600
    assert set(settings["queries"]) == {"requests", "errors", "latency_p95_seconds", "saturation"}


def test_queries_are_rendered_with_quoted_values(config: dict[str, Any]) -> None:
    settings = resolve(config, {})
    rendered = render_queries(settings["queries"], "shop", "checkout.v2", 3600)
    assert 'namespace="shop"' in rendered["requests"]
    assert 'pod=~"checkout\\\\.v2-[a-z0-9]+-[a-z0-9]+"' in rendered["requests"]
    assert "[3600s]" in rendered["requests"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"queries": {"errors": "sum(rate(x[5m])"}}, "queries.errors.*never closed", id="unbalanced"),
        pytest.param({"queries": {"requests": 'x{a="b}'}}, "queries.requests.*string", id="unclosed-string"),
        pytest.param({"queries": {"requests": "x{pod=~$pods}"}}, "unknown placeholder", id="unknown-placeholder"),
        pytest.param({"queries": {"requests": "x{a=$}"}}, r"\$\$", id="stray-dollar"),
        pytest.param({"queries": {"latency": "up"}}, "unknown query name", id="unknown-query"),
        pytest.param({"queries": {"requests": ""}}, "empty", id="empty-query"),
        pytest.param({"default_service": "shop/unknown"}, "not a configured service", id="unknown-service"),
        pytest.param({"services": {"Shop/x": {}}, "default_service": "Shop/x"}, "namespace", id="bad-namespace"),
        pytest.param({"min_errors": -1}, "min_errors", id="negative-min-errors"),
        pytest.param({"error_ratio_degraded": 2}, "at most 1", id="ratio-above-one"),
        pytest.param(
            {"services": {"shop/checkout": {"min_replicas": 5, "max_replicas": 2}}}, "below min_replicas", id="bounds"
        ),
        pytest.param(
            {"services": {"shop/checkout": {"dependencies": [{"kind": "mysql", "conn_id": "x"}]}}},
            "kind must be one of",
            id="dependency-kind",
        ),
    ],
)
def test_bad_configuration_is_refused(config: dict[str, Any], change: dict[str, Any], message: str) -> None:
    for key, value in change.items():
        if key == "queries":
            config["queries"].update(value)
        elif key == "services" and "shop/checkout" in value and len(value) == 1:
            config["services"]["shop/checkout"].update(value["shop/checkout"])
        else:
            config[key] = value
    with pytest.raises(InvalidInput, match=message):
        resolve(config, {})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        pytest.param({"min_errors": 1}, "would loosen", id="lower-min-errors"),
        pytest.param({"error_ratio_degraded": 0.01}, "would loosen", id="lower-ratio"),
        pytest.param({"max_replicas": 10}, "would loosen", id="more-replicas"),
        pytest.param({"namespace": "shop"}, "go together", id="namespace-alone"),
        pytest.param({"namespace": "shop", "deployment": "payments"}, "not a configured service", id="unlisted"),
        pytest.param({"namespace": "shop", "deployment": "Bad_Name"}, "DNS-1123", id="bad-deployment"),
        pytest.param({"max_replicas": 1}, "below the service's min_replicas", id="below-min"),
    ],
)
def test_params_only_tighten(config: dict[str, Any], params: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        resolve(config, params)


def test_params_tighten(config: dict[str, Any]) -> None:
    settings = resolve(config, {"min_errors": 50, "max_replicas": 3, "allow_restart": False})
    assert settings["thresholds"]["min_errors"] == 50
    assert settings["service"]["max_replicas"] == 3
    assert settings["thresholds"]["allow_restart"] is False
    assert len(settings["notes"]) == 3
