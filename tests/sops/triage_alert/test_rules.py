"""Triage rules: parsing, the label-insertion contract, and the offline PromQL check (promtool)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from toilless.common.config import include_path
from toilless.sops.triage_alert import rules

GOOD = {
    "query": 'sum(increase(http_requests_total{service="{{ labels.service }}", code=~"5.."}[1h]))',
    "noise_at_most": 1,
    "silence_minutes": 60,
}


def rule(**changes: Any) -> dict[str, Any]:
    spec = dict(GOOD)
    spec.update(changes)
    return {key: value for key, value in spec.items() if value is not None}


def test_the_shipped_rules_load_and_parse() -> None:
    loaded = rules.load_rules(include_path("triage_rules.yaml"))
    assert "service-5xx" in loaded
    rules.check_rules(loaded)  # raises if promtool refuses one


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(rule(query=None), "query is required", id="no-query"),
        pytest.param(rule(noise_at_most=-1), "noise_at_most must be >= 0", id="negative-threshold"),
        pytest.param(rule(silence_minutes=0), "silence_minutes > 0", id="zero-silence"),
        pytest.param(rule(silence_minutes="60"), "silence_minutes is required", id="silence-as-text"),
        pytest.param(rule(extra=1), "unknown keys ['extra']", id="unknown-key"),
        pytest.param(
            rule(query='sum(x{service=~"{{ labels.service }}"})'), "may only be a whole matcher value", id="in-regex"
        ),
        pytest.param(rule(query="sum(x) * {{ labels.n }}"), "may only be a whole matcher value", id="bare"),
        pytest.param(
            rule(query='sum(x{a="pre-{{ labels.service }}"})'), "may only be a whole matcher value", id="partial"
        ),
        pytest.param(
            rule(known_causes=[{"name": "c", "response": "r", "owner_channel": "ops", "log": {"pattern": "x"}}]),
            "needs the rule's kubernetes target",
            id="log-without-kubernetes",
        ),
        pytest.param(
            rule(
                kubernetes={"namespace": "n", "deployment": "d"},
                known_causes=[{"name": "c", "response": "r", "owner_channel": "ops", "log": {"pattern": "("}}],
            ),
            "not a valid regex",
            id="bad-log-regex",
        ),
    ],
)
def test_a_malformed_rule_is_refused_saying_why(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(rules.TriageRuleError, match="triage rule r1") as raised:
        rules.parse_rule("r1", spec)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("value", "inserted"),
    [
        pytest.param("checkout", '"checkout"', id="plain"),
        pytest.param('a"} or vector(1) #', '"a\\"} or vector(1) #"', id="quote-breakout"),
        pytest.param("back\\slash", '"back\\\\slash"', id="backslash"),
        pytest.param("line\nbreak", '"line\\nbreak"', id="newline"),
    ],
)
def test_label_values_are_inserted_as_escaped_promql_strings(value: str, inserted: str) -> None:
    parsed = rules.parse_rule("r1", rule())
    assert f"service={inserted}" in parsed.query_for({"service": value})


def test_a_hostile_label_value_still_parses_as_one_string() -> None:
    parsed = rules.parse_rule("r1", rule())
    hostile = parsed.query_for({"service": 'a"}) or vector(1) or sum(x{b="'})
    assert rules.check_promql({"hostile": hostile}) == {}


def test_promtool_names_the_expression_that_does_not_parse() -> None:
    failures = rules.check_promql({"good": "sum(rate(x[5m]))", "bad": "sum(rate(x[5m]) by (", "bad2": "x{"})
    assert set(failures) == {"bad", "bad2"}
    assert "parse error" in failures["bad"]


def test_without_promtool_the_check_refuses_instead_of_passing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOILLESS_PROMTOOL", "")
    monkeypatch.setattr(rules.shutil, "which", lambda name: None)
    with pytest.raises(rules.TriageRuleError, match="promtool is not installed"):
        rules.check_promql({"never-seen": "sum(never_checked_before_metric_abc)"})


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        pytest.param({"ns": "Bad_NS", "svc": "web"}, "namespace 'Bad_NS' is not a DNS-1123 label", id="upper"),
        pytest.param({"ns": "ok", "svc": ""}, "deployment '' is not a DNS-1123 label", id="missing-label"),
        pytest.param({"ns": "ok", "svc": "a/../b"}, "deployment 'a/../b'", id="path"),
    ],
)
def test_kubernetes_names_from_labels_are_checked(labels: dict[str, str], message: str) -> None:
    target = rules.KubernetesTarget(namespace="{{ labels.ns }}", deployment="{{ labels.svc }}")
    with pytest.raises(rules.TriageRuleError, match="DNS-1123") as raised:
        target.resolve(labels)
    assert message in str(raised.value)


def test_rules_file_that_is_not_yaml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "triage_rules.yaml"
    path.write_text("rules: [unclosed", encoding="utf-8")
    with pytest.raises(rules.TriageRuleError, match="not valid YAML"):
        rules.load_rules(path)


K8S = {"namespace": "{{ labels.namespace }}", "deployment": "{{ labels.deployment }}"}
TOPIC_LOG = {"pattern": "topic (?P<topic>[a-z.-]+) does not exist"}
TREND = {
    "query": 'sum(container_memory_working_set_bytes{namespace="{{ labels.namespace }}"})',
    "range_minutes": 360,
    "step_seconds": 300,
    "rising_per_hour_at_least": 1048576,
    "steady_for_minutes": 120,
}


def counted(**count: Any) -> dict[str, Any]:
    spec = {"at_least": 5, "owner_by": "topic"}
    spec.update(count)
    return rule(
        kubernetes=K8S,
        known_causes=[
            {
                "name": "topic-missing",
                "response": "typo",
                "owner_channel": "infrastructure",
                "log": TOPIC_LOG,
                "require_pods_healthy": False,
                "count": {key: value for key, value in spec.items() if value is not None},
            }
        ],
    )


def trend(**changes: Any) -> dict[str, Any]:
    spec = dict(TREND)
    spec.update(changes)
    return rule(trend={key: value for key, value in spec.items() if value is not None})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(counted(at_least=0), "at_least must be a positive integer, not 0", id="threshold-zero"),
        pytest.param(counted(at_least=-3), "at_least must be a positive integer, not -3", id="threshold-negative"),
        pytest.param(counted(at_least=2.5), "at_least must be a positive integer, not 2.5", id="threshold-fraction"),
        pytest.param(counted(at_least="5"), "at_least must be a positive integer, not '5'", id="threshold-text"),
        pytest.param(counted(at_least=True), "at_least must be a positive integer, not True", id="threshold-bool"),
        pytest.param(counted(at_least=None), "at_least must be a positive integer, not None", id="threshold-missing"),
        pytest.param(counted(window_minutes=0), "window_minutes must be a positive integer", id="window-zero"),
        pytest.param(counted(owner_by="queue"), "'queue' is not a named group of log.pattern", id="owner-not-group"),
        pytest.param(counted(owner_map="topic owners"), "owner_map names a mapping", id="owner-map-name"),
        pytest.param(counted(extra=1), "unknown keys ['extra']", id="count-unknown-key"),
        pytest.param(
            counted(query='sum(x{service=~"{{ labels.service }}"})'),
            "may only be a whole matcher value",
            id="count-query-label-in-regex",
        ),
        pytest.param(trend(step_seconds=1), "more than 11,000 points", id="trend-too-many-points"),
        pytest.param(trend(steady_for_minutes=400), "longer than range_minutes", id="trend-steady-over-range"),
        pytest.param(trend(rising_per_hour_at_least=0), "must be a positive number", id="trend-zero-rate"),
        pytest.param(trend(on_rising="noise"), "on_rising must be one of real, count", id="trend-rising-noise"),
        pytest.param(trend(on_flat="real"), "on_flat must be one of noise, count", id="trend-flat-real"),
        pytest.param(trend(unit="MiB"), "unit must be bytes", id="trend-unit"),
        pytest.param(trend(query=None), "query is required", id="trend-no-query"),
        pytest.param(trend(range_minutes=5, step_seconds=300), "at least two steps", id="trend-one-step"),
    ],
)
def test_a_malformed_trend_or_count_is_refused_saying_why(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(rules.TriageRuleError, match="triage rule r1") as raised:
        rules.parse_rule("r1", spec)
    assert message in str(raised.value)


def test_a_counted_cause_with_a_query_needs_no_log() -> None:
    parsed = rules.parse_rule(
        "r1",
        counted(query='sum by (topic) (increase(produce_errors_total{service="{{ labels.service }}"}[1h]))'),
    )
    [cause] = parsed.known_causes
    assert cause.count is not None
    assert cause.count.at_least == 5
    assert set(parsed.expressions({"service": "s"})) == {"query", "known_causes.topic-missing.count"}


@pytest.mark.parametrize(
    ("spec", "part"),
    [
        pytest.param(trend(query="sum(rate(x[5m]) by ("), "trend", id="trend"),
        pytest.param(
            counted(query="sum by (topic) (increase(x[1h])"), "known_causes.topic-missing.count", id="count-query"
        ),
    ],
)
def test_a_trend_or_count_query_that_does_not_parse_refuses_the_routes_naming_the_route(
    tmp_path: Path, spec: dict[str, Any], part: str
) -> None:
    import yaml

    from toilless.intake.routing import RouteError, RouteTable

    (tmp_path / "triage_rules.yaml").write_text(yaml.safe_dump({"rules": {"r1": spec}}), encoding="utf-8")
    routes = tmp_path / "alert_routes.yaml"
    route = {"name": "mem-route", "dag_id": "alert_intake_selftest", "matchers": ['alertname="X"'], "triage": "r1"}
    routes.write_text(yaml.safe_dump({"routes": [route]}), encoding="utf-8")
    with pytest.raises(RouteError, match="route mem-route: triage rule r1: PromQL does not parse") as raised:
        RouteTable.from_file(routes)
    assert f"{part}: " in str(raised.value)
    assert "parse error" in str(raised.value)


def test_a_count_threshold_that_is_not_a_positive_integer_refuses_the_routes(tmp_path: Path) -> None:
    import yaml

    from toilless.intake.routing import RouteError, RouteTable

    (tmp_path / "triage_rules.yaml").write_text(
        yaml.safe_dump({"rules": {"r1": counted(at_least="many")}}), encoding="utf-8"
    )
    routes = tmp_path / "alert_routes.yaml"
    route = {"name": "topic-route", "dag_id": "alert_intake_selftest", "matchers": ['alertname="X"'], "triage": "r1"}
    routes.write_text(yaml.safe_dump({"routes": [route]}), encoding="utf-8")
    with pytest.raises(RouteError, match="topic-route") as raised:
        RouteTable.from_file(routes)
    assert "at_least must be a positive integer" in str(raised.value)
