"""Triage alert: count-based known causes, "once or twice is a typo, many go to the owner". Pure (no Airflow import).

A known cause with a ``count`` (include/triage_rules.yaml) is counted, from the matching log lines or from a PromQL
query, per owner key (e.g. the topic a "topic does not exist" error names). Under the threshold it is dismissed with
its documented response; at or over, each key's owner (an owner map of include/config/triage_alert.yaml, e.g.
``topic_owners``) is told with the numbers, and keys nobody is known to own are named.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

#: A line that starts with a timestamp (optionally in brackets): RFC 3339 / ISO 8601, as most loggers write it.
_LEADING_TIME = re.compile(r"^\[?(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?)")
#: Kafka's topic name contract (kafka.common.internals.Topic): letters, digits, '.', '_', '-'; at most 249.
KAFKA_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}\Z")
#: Distinct owner keys kept per cause (a log full of random names must not fill XCom or Slack).
MAX_KEYS = 50
MAX_KEY_CHARS = 249
#: The owner key of a line or series that names none.
NO_KEY = ""


class OwnerMapError(ValueError):
    """An owner map in the config is malformed (a bad key, or a channel Slack does not know)."""


def line_time(line: str) -> datetime | None:
    found = _LEADING_TIME.match(line)
    if not found:
        return None
    text = found.group(1).replace(",", ".").replace(" ", "T")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Python 3.11 reads up to microseconds; a nanosecond fraction is cut to six digits.
    text = re.sub(r"\.(\d{6})\d+", r".\1", text)
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    return stamp if stamp.tzinfo else None  # a local time without zone cannot be placed in the window


def count_lines(
    lines: Iterable[str], pattern: re.Pattern[str], *, group: str, window: timedelta, now: datetime
) -> tuple[int, dict[str, int]]:
    """Matching lines in the window (a line without a readable timestamp counts: the log's end is recent), in all
    and per ``group`` value."""
    total, per_key = 0, {}
    for line in lines:
        found = pattern.search(line)
        if not found:
            continue
        stamp = line_time(line)
        if stamp is not None and not (now - window <= stamp <= now + timedelta(minutes=5)):
            continue
        total += 1
        key = (found.group(group) or NO_KEY) if group else NO_KEY
        add(per_key, key[:MAX_KEY_CHARS], 1)
    return total, per_key


def add(per_key: dict[str, int], key: str, amount: float) -> None:
    if key in per_key or len(per_key) < MAX_KEYS:
        per_key[key] = per_key.get(key, 0) + round(amount)
    else:
        per_key["(others)"] = per_key.get("(others)", 0) + round(amount)


def count_samples(samples: Iterable[tuple[Mapping[str, str], float]], *, label: str) -> tuple[int, dict[str, int]]:
    """A PromQL count's instant samples, in all and per ``label`` value (rounded: increase() extrapolates)."""
    total, per_key = 0.0, {}
    for labels, value in samples:
        total += value
        add(per_key, str(labels.get(label, NO_KEY))[:MAX_KEY_CHARS] if label else NO_KEY, value)
    return round(total), {key: n for key, n in per_key.items() if n > 0}


def check_owner_map(name: str, owners: Any, known_channels: Iterable[str]) -> dict[str, str]:
    """``{key: channel}`` from the config, or :class:`OwnerMapError`: every key a Kafka topic name, every channel one
    of slack.channels (include/config/toilless.yaml): an owner that cannot be told is found when the run starts."""
    if owners is None:
        return {}
    if not isinstance(owners, Mapping):
        raise OwnerMapError(f"{name} must be a mapping of topic -> Slack channel name")
    known = set(known_channels)
    checked: dict[str, str] = {}
    for key, channel in owners.items():
        if not isinstance(key, str) or not KAFKA_TOPIC.match(key):
            raise OwnerMapError(f"{name}: {str(key)[:80]!r} is not a topic name (letters, digits, . _ -; 249 max)")
        if not isinstance(channel, str) or channel not in known:
            raise OwnerMapError(
                f"{name}: {key}: Slack channel {str(channel)[:80]!r} is not in slack.channels of "
                f"include/config/toilless.yaml (known: {', '.join(sorted(known))})"
            )
        checked[key] = channel
    return checked


def owners_for(per_key: Mapping[str, int], owners: Mapping[str, str]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Who is told what: ``[{channel, counts: {key: n}}]`` (by channel, then key) and the keys nobody owns."""
    by_channel: dict[str, dict[str, int]] = {}
    unknown: dict[str, int] = {}
    for key, count in sorted(per_key.items()):
        channel = owners.get(key)
        if channel:
            by_channel.setdefault(channel, {})[key] = count
        else:
            unknown[key or "(not named)"] = count
    return [{"channel": channel, "counts": counts} for channel, counts in sorted(by_channel.items())], unknown
