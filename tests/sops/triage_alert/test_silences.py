"""Silences as Toilless builds them: Alertmanager API v2's contract, the configured maximum, the durable list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from toilless.sops.triage_alert import silences

NOW = datetime.now(UTC)
LABELS = {"alertname": "Service5xx", "service": "checkout", "namespace": "payments"}


def build(**changes: Any) -> silences.SilenceRequest:
    kwargs: dict[str, Any] = {
        "minutes": 60,
        "max_minutes": 240,
        "created_by": "toilless",
        "reason": "noise",
        "incident": "alert__Service5xx__abc",
        "now": NOW,
    }
    kwargs.update(changes)
    return silences.build_silence(LABELS, **kwargs)


def test_matchers_are_exactly_the_alerts_labels() -> None:
    body = build().body()
    assert body["matchers"] == [
        {"name": "alertname", "value": "Service5xx", "isRegex": False, "isEqual": True},
        {"name": "namespace", "value": "payments", "isRegex": False, "isEqual": True},
        {"name": "service", "value": "checkout", "isRegex": False, "isEqual": True},
    ]
    assert body["createdBy"] == "toilless"
    assert body["comment"].endswith("[toilless-incident:alert__Service5xx__abc]")
    starts = datetime.fromisoformat(body["startsAt"].replace("Z", "+00:00"))
    ends = datetime.fromisoformat(body["endsAt"].replace("Z", "+00:00"))
    assert ends - starts == timedelta(minutes=60)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"minutes": 241}, "over the configured maximum of 240 minutes", id="over-max"),
        pytest.param({"minutes": 0}, "positive number of minutes", id="zero"),
        pytest.param({"max_minutes": 0}, "max_silence_minutes must be positive", id="no-max"),
        pytest.param({"created_by": " "}, "createdBy: required", id="no-creator"),
    ],
)
def test_a_silence_that_breaks_the_contract_or_the_maximum_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(silences.SilenceError) as raised:
        build(**changes)
    assert message in str(raised.value)


def body(**changes: Any) -> dict[str, Any]:
    result = build().body()
    result.update(changes)
    return result


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        pytest.param(body(matchers=[]), "at least one is required", id="no-matchers"),
        pytest.param(
            body(matchers=[{"name": "a-b", "value": "x", "isRegex": False, "isEqual": True}]),
            "is not a label name",
            id="bad-label-name",
        ),
        pytest.param(
            body(matchers=[{"name": "a", "value": "", "isRegex": False, "isEqual": True}]),
            "matches the empty string",
            id="silences-everything",
        ),
        pytest.param(
            body(matchers=[{"name": "a", "value": "x.*", "isRegex": True, "isEqual": True}]),
            "isRegex false",
            id="regex",
        ),
        pytest.param(body(comment=""), "comment: required", id="no-comment"),
        pytest.param(body(comment="x" * 1001), "comment: required, 1-1000", id="long-comment"),
        pytest.param(body(endsAt=body()["startsAt"]), "endsAt must be after startsAt", id="empty-span"),
        pytest.param(
            body(startsAt="2000-01-01T00:00:00Z", endsAt="2000-01-01T01:00:00Z"), "in the past", id="in-the-past"
        ),
        pytest.param(body(endsAt="tomorrow"), "RFC 3339", id="not-a-time"),
    ],
)
def test_check_silence_lists_alertmanagers_refusals(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(silences.SilenceError) as raised:
        silences.check_silence(bad, now=NOW)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    "silence_id",
    [pytest.param("../status", id="path"), pytest.param("", id="empty"), pytest.param("abc", id="not-uuid")],
)
def test_silence_ids_must_be_uuids(silence_id: str) -> None:
    with pytest.raises(silences.SilenceError, match="not an Alertmanager silence id"):
        silences.check_silence_id(silence_id)


def test_filter_matcher_quotes_the_value() -> None:
    assert silences.filter_matcher("alertname", 'a"b\\c') == 'alertname="a\\"b\\\\c"'
    with pytest.raises(silences.SilenceError):
        silences.filter_matcher("bad name", "x")


def test_same_silence_is_this_incidents_active_one_only() -> None:
    request = build()
    existing = {**request.body(), "id": "x", "status": {"state": "active"}}
    assert silences.same_silence(existing, request, "alert__Service5xx__abc")
    assert not silences.same_silence(existing, request, "alert__Service5xx__other")
    assert not silences.same_silence({**existing, "status": {"state": "expired"}}, request, "alert__Service5xx__abc")
    fewer = {**existing, "matchers": existing["matchers"][:1]}
    assert not silences.same_silence(fewer, request, "alert__Service5xx__abc")


def test_the_durable_list_records_prunes_and_lists() -> None:
    request = build()
    registry = silences.record({}, "id-1", request, alertname="Service5xx", run_id="run-1")
    old = build(now=NOW - timedelta(days=10), minutes=60)
    registry = silences.record(registry, "id-old", old, alertname="Service5xx", run_id="run-0")
    kept = silences.prune(registry, now=NOW, keep=timedelta(days=8))
    assert set(kept) == {"id-1"}
    [row] = silences.listing(kept, now=NOW)
    assert row["id"] == "id-1"
    assert row["active"] is True
    assert row["matchers"] == LABELS
    later = silences.listing(kept, now=NOW + timedelta(hours=2))
    assert later[0]["active"] is False
