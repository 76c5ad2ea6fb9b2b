"""Triage alert: count-based known causes (pure): counting in a window, per owner key, and the owner map."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from toilless.sops.triage_alert.counts import (
    MAX_KEYS,
    OwnerMapError,
    check_owner_map,
    count_lines,
    count_samples,
    line_time,
    owners_for,
)

PATTERN = re.compile(r"(?i)\btopic[ =:]+[\"']?(?P<topic>[A-Za-z0-9._-]{1,249})[\"']?:? does not exist")
NOW = datetime.now(UTC)
CHANNELS = {"infrastructure": "slack_infrastructure", "developers": "slack_developers"}


def stamp(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_lines_are_counted_per_topic_inside_the_window_only() -> None:
    lines = [
        f"{stamp(5)} ERROR post failed: topic orders-v2 does not exist",
        f"{stamp(10)} ERROR post failed: Topic 'orders-v2' does not exist",
        f"[{stamp(20)}] ERROR topic=payments does not exist",
        f"{stamp(90)} ERROR post failed: topic orders-v2 does not exist",  # outside the hour
        "ERROR post failed: topic audit does not exist",  # no timestamp: the log's end is recent, counted
        f"{stamp(1)} INFO topic orders exists",
    ]
    total, per_topic = count_lines(lines, PATTERN, group="topic", window=timedelta(minutes=60), now=NOW)
    assert total == 4
    assert per_topic == {"orders-v2": 2, "payments": 1, "audit": 1}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("2026-01-02T03:04:05Z x", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), id="rfc3339"),
        pytest.param(
            "2026-01-02 03:04:05,123+00:00 x", datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=UTC), id="log4j-comma"
        ),
        pytest.param(
            "2026-01-02T03:04:05.123456789Z x", datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC), id="nanoseconds"
        ),
        pytest.param("2026-01-02T03:04:05 x", None, id="no-zone-is-not-placed"),
        pytest.param("ERROR x", None, id="none"),
    ],
)
def test_leading_timestamps(line: str, expected: datetime | None) -> None:
    assert line_time(line) == expected


def test_a_log_full_of_random_topics_keeps_a_bounded_number_of_keys() -> None:
    lines = [f"topic t{index} does not exist" for index in range(500)]
    total, per_topic = count_lines(lines, PATTERN, group="topic", window=timedelta(minutes=60), now=NOW)
    assert total == 500
    assert len(per_topic) == MAX_KEYS + 1
    assert per_topic["(others)"] == 500 - MAX_KEYS


def test_promql_samples_are_counted_per_label_rounded() -> None:
    samples = [({"topic": "orders"}, 3.2), ({"topic": "audit"}, 0.0), ({"topic": "payments"}, 1.1)]
    assert count_samples(samples, label="topic") == (4, {"orders": 3, "payments": 1})


def test_owners_are_grouped_by_channel_and_unknown_topics_named() -> None:
    notices, unknown = owners_for(
        {"orders": 7, "payments": 2, "mystery": 4}, {"orders": "developers", "payments": "developers"}
    )
    assert notices == [{"channel": "developers", "counts": {"orders": 7, "payments": 2}}]
    assert unknown == {"mystery": 4}


@pytest.mark.parametrize(
    ("owners", "message"),
    [
        pytest.param(
            {"orders": "#dev-team"}, "Slack channel '#dev-team' is not in slack.channels", id="unknown-channel"
        ),
        pytest.param({"orders": 7}, "Slack channel '7' is not in slack.channels", id="channel-not-text"),
        pytest.param({"bad topic!": "developers"}, "is not a topic name", id="bad-topic"),
        pytest.param({"x" * 250: "developers"}, "is not a topic name", id="topic-too-long"),
        pytest.param(["orders"], "must be a mapping", id="not-a-mapping"),
    ],
)
def test_an_owner_map_with_a_bad_entry_is_refused(owners: Any, message: str) -> None:
    with pytest.raises(OwnerMapError, match="topic_owners") as raised:
        check_owner_map("topic_owners", owners, CHANNELS)
    assert message in str(raised.value)


def test_a_good_owner_map_is_kept() -> None:
    assert check_owner_map("topic_owners", {"orders.v2": "developers"}, CHANNELS) == {"orders.v2": "developers"}
    assert check_owner_map("topic_owners", None, CHANNELS) == {}
