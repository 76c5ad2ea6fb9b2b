"""Pure checks of the alert intake (issue 12): body sanity, limits, timestamps, refusal rate limit, escaped messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from tests.fixtures.slack_checks import limit_problems, markup_problems
from toilless.common.config import read_defaults
from toilless.intake import decisions, validation
from toilless.intake.models import Alert, WebhookPayload
from toilless.intake.refusals import RefusalLimiter

SETTINGS = read_defaults("alert_intake")
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _alert(**overrides: Any) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {"alertname": "X", "instance": "i-1"},
        "annotations": {},
        "startsAt": "2026-11-24T11:58:00Z",
        "fingerprint": "f00d",
        **overrides,
    }


def _payload(*alerts: dict[str, Any], **overrides: Any) -> WebhookPayload:
    body = {"version": "4", "status": "firing", "alerts": list(alerts or [_alert()]), **overrides}
    return WebhookPayload.model_validate(body)


# -- body ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(b"[" * 3000 + b"]" * 3000, "nests deeper", id="deep-3000"),
        pytest.param(b"[" * 40 + b"]" * 40, "nests deeper", id="deep-40-below-recursion-limit"),
        pytest.param(b'{"n": ' + b"9" * 5000 + b"}", "digits", id="5000-digits"),
        pytest.param(b'{"n": -' + b"9" * 31 + b"}", "digits", id="31-digits"),
        pytest.param(b'{"n": 1e999}', "out of range", id="inf"),
        pytest.param(b'{"n": Infinity}', "Infinity", id="infinity-literal"),
        pytest.param(b'{"s": "\\ud800"}', "lone surrogate", id="lone-surrogate"),
        pytest.param(b'{"\\udfff": 1}', "lone surrogate", id="surrogate-key"),
        pytest.param(b'{"s": "a\\u0000b"}', "NUL", id="nul"),
        pytest.param(b"\xff\xfe", "UTF-8", id="not-utf8"),
        pytest.param(b'{"a": ', "not valid JSON", id="truncated"),
    ],
)
def test_unreadable_bodies_are_refused_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(validation.BadBody, match=reason):
        validation.parse_body(body)


def test_a_real_body_parses_unchanged() -> None:
    body = b'{"version": "4", "truncatedAlerts": 3, "alerts": [{"labels": {"a": "\\u00e9\\ud83d\\ude00"}}]}'
    assert validation.parse_body(body) == {"version": "4", "truncatedAlerts": 3, "alerts": [{"labels": {"a": "é😀"}}]}


# -- limits -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("alert", "overrides", "expected"),
    [
        pytest.param(_alert(labels={"alertname": "X", "big": "v" * 1025}), {}, "1,025 characters", id="label-value"),
        pytest.param(
            _alert(labels={"alertname": "X", **{f"l{i}": "v" for i in range(64)}}), {}, "65 labels", id="labels"
        ),
        pytest.param(_alert(labels={"alertname": "X", "n" * 129: "v"}), {}, "label name", id="label-name"),
        pytest.param(_alert(annotations={"d": "a" * 8193}), {}, "8,193 characters", id="annotation"),
        pytest.param(_alert(generatorURL="http://" + "a" * 2048), {}, "generatorURL", id="generator-url"),
        pytest.param(_alert(), {"externalURL": "http://" + "a" * 2048}, "externalURL", id="external-url"),
        pytest.param(_alert(), {"receiver": "r" * 1025}, "receiver", id="receiver"),
        pytest.param(_alert(), {"commonLabels": {f"l{i}": "v" for i in range(65)}}, "commonLabels", id="common"),
    ],
)
def test_values_over_the_limits_are_listed(alert: dict[str, Any], overrides: dict[str, Any], expected: str) -> None:
    problems = validation.limit_problems(_payload(alert, **overrides), validation.Limits())
    assert any(expected in problem for problem in problems), problems


def test_limits_come_from_settings_and_a_valid_payload_has_no_problem() -> None:
    limits = validation.Limits.from_settings({"limits": {"max_labels": 3, "max_future_seconds": 60}})

    assert limits.max_labels == 3
    assert limits.max_future_seconds == 60.0
    assert validation.limit_problems(_payload(), validation.Limits.from_settings(SETTINGS)) == []
    many = _payload(_alert(labels={"alertname": "X", "a": "1", "b": "2", "c": "3"}))
    assert validation.limit_problems(many, limits) == ["alerts[0].labels: 4 labels, at most 3"]


def test_problem_list_is_bounded_for_huge_payloads() -> None:
    alerts = [_alert(labels={"alertname": "X", **{f"l{i}": "v" for i in range(70)}}) for _ in range(200)]
    assert len(validation.limit_problems(_payload(*alerts), validation.Limits())) <= 52


def test_target_over_its_column_is_a_problem() -> None:
    assert validation.target_problem("instance=" + "i" * 991) is None
    assert "1,001 characters" in (validation.target_problem("instance=" + "i" * 992) or "")


# -- timestamps -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "starts_at",
    [
        pytest.param(12345, id="integer"),
        pytest.param("12345", id="epoch-string"),
        pytest.param(1.5, id="float"),
        pytest.param("0001-01-01T00:00:00Z", id="year-1"),
        pytest.param("1969-12-31T23:59:59Z", id="before-2000"),
        pytest.param("9999-12-31T23:59:59Z", id="year-9999"),
        pytest.param("9999-12-31T23:59:59-01:00", id="year-9999-overflowing-utc"),
        pytest.param("2026-11-24T11:58:00", id="naive"),
        pytest.param("yesterday", id="words"),
    ],
)
def test_implausible_startsAt_is_refused_by_the_model(starts_at: Any) -> None:
    with pytest.raises(ValidationError, match="startsAt"):
        Alert.model_validate(_alert(startsAt=starts_at))


def test_startsAt_ahead_of_the_clock_beyond_the_skew_is_a_problem() -> None:
    limits = validation.Limits()
    soon = Alert.model_validate(_alert(startsAt=(NOW + timedelta(minutes=30)).isoformat()))
    later = Alert.model_validate(_alert(startsAt=(NOW + timedelta(days=3)).isoformat()))

    assert validation.timestamp_problems(soon, NOW, limits) == []
    assert "3 days in the future" in validation.timestamp_problems(later, NOW, limits)[0]
    ends_soon = Alert.model_validate(_alert(endsAt=(NOW + timedelta(minutes=5)).isoformat()))
    ends_never = Alert.model_validate(_alert(endsAt="2999-01-01T00:00:00Z"))
    assert validation.timestamp_problems(ends_soon, NOW, limits) == []
    assert "endsAt" in validation.timestamp_problems(ends_never, NOW, limits)[0]


def test_alertmanager_timestamps_are_accepted() -> None:
    alert = Alert.model_validate(_alert(startsAt="2026-11-24T11:58:00.123456789+01:00", endsAt="0001-01-01T00:00:00Z"))
    assert alert.starts_at_utc == "2026-11-24T10:58:00.123456Z"
    assert alert.ends_at_utc is None


# -- refusal rate limit -----------------------------------------------------------------------------------------------
def test_refusals_are_posted_once_per_receiver_per_interval_with_a_count() -> None:
    limiter = RefusalLimiter(interval=600)

    assert limiter.admit("am", 0.0) == 0
    assert [limiter.admit("am", float(second)) for second in range(1, 100)] == [None] * 99
    assert limiter.admit("other", 50.0) == 0
    assert limiter.admit("am", 601.0) == 99
    assert limiter.admit("am", 602.0) is None


def test_refusal_notice_says_how_many_were_not_posted_and_is_escaped() -> None:
    message = decisions.rejected_notice(
        ["alerts.0.labels.<!channel>: bad"] * 30, receiver="am`<!here>`", alertnames=["<b>"], suppressed=12
    )

    assert "12 more refusal(s)" in message["text"]
    assert "10 more problem(s) cut" in message["text"]
    assert markup_problems(message, set()) == []
    assert limit_problems(message) == []


# -- messages ---------------------------------------------------------------------------------------------------------
def _facts(alert: Alert, links: list[tuple[str, str]], hosts: set[str]) -> decisions.AlertFacts:
    return decisions.AlertFacts(
        alert, decisions.priority_for(alert.labels, SETTINGS), "prod", links, link_hosts=frozenset(hosts)
    )


def test_ack_escapes_outside_text_and_links_only_configured_http_hosts() -> None:
    alert = Alert.model_validate(
        _alert(
            labels={"alertname": "A<!channel>", "instance": "x`<@U123>`"},
            annotations={"summary": "<!channel> <https://evil.example|click here> @everyone https://evil.example"},
            generatorURL="javascript:alert(1)",
        )
    )
    links = decisions.links_for(alert, "prod", "javascript:alert(1)", SETTINGS)
    facts = _facts(alert, [*links, ("Phish", "https://grafana.example.com.evil.example/")], {"grafana.example.com"})

    message = decisions.ack_started(
        facts, dag_id="d", run_id="r", run_link="https://grafana.example.com/run", target="instance=x`y"
    )

    assert markup_problems(message, {"grafana.example.com"}) == []
    assert "<https://grafana.example.com/run|Open the run>" in message["text"]
    assert "<https://grafana.example.com/d/service-overview?var-env=prod&amp;var-service=|Grafana>" in message["text"]
    assert "javascript:alert(1)" in message["text"]  # said, not linked
    assert "`instance=x\u02cby`" in message["text"]


def test_every_builder_stays_within_slacks_limits_with_maximal_input() -> None:
    alert = Alert.model_validate(
        _alert(
            labels={"alertname": "A" * 1024, **{f"l{i:02d}": "<" * 1024 for i in range(63)}},
            annotations={f"n{i:02d}": "&" * 8192 for i in range(32)},
        )
    )
    facts = _facts(alert, [(f"link {i}", "https://grafana.example.com/" + "x" * 2000) for i in range(40)], set())
    messages = [
        decisions.ack_no_runbook(facts),
        decisions.ack_started(facts, dag_id="d", run_id="r" * 250, run_link="", target="t" * 1000, note="n" * 5000),
        decisions.ack_not_started(facts, dag_id="d", target="t" * 1000, reason="r" * 5000),
        decisions.ack_paused(facts, dag_id="d", target="t" * 1000),
        decisions.ack_missing(facts, dag_id="d", target="t" * 1000, why="gone"),
        decisions.resolved_notice(facts, dag_id="d", run_id="r", run_link="", state="running"),
        decisions.queued_started(facts, dag_id="d", run_id="r", run_link="", target="t"),
    ]

    for message in messages:
        assert limit_problems(message) == []
        assert markup_problems(message, set()) == []
    assert "44 more label(s) cut" in messages[0]["text"]
    assert "32 more link(s) cut" in messages[1]["text"] or "more line(s) cut" in messages[1]["text"]
