"""Checks on an Alertmanager delivery that decide, before anything starts, whether it can ever succeed. Pure.

Alertmanager retries a 5xx and never a 4xx, so every problem that a retry cannot fix must be found here and answered
4xx: a body that is not sane JSON (nesting, numbers, invalid Unicode: 400), and values over the configured limits or
with impossible timestamps (422). Nothing here imports Airflow.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from toilless.intake.models import Alert, WebhookPayload

#: Deeper than any real webhook body (the deepest Alertmanager field is alerts[].labels.<name>: depth 4).
MAX_JSON_DEPTH = 32
#: Digits of an integer literal: Alertmanager sends small counters only; Python refuses > 4,300 digits with an error.
MAX_INTEGER_DIGITS = 30
#: A target is stored in a VARCHAR(1000) column (toilless.intake.store); PostgreSQL refuses longer values.
TARGET_COLUMN_CHARS = 1000


class BadBody(ValueError):
    """The body is not JSON this intake can read (answered 400); the message says why."""


def parse_body(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON document in ``body``, or :class:`BadBody` for anything a retry could never fix.

    Refused: invalid UTF-8, nesting deeper than ``max_depth``, integers longer than :data:`MAX_INTEGER_DIGITS`
    digits, NaN/Infinity and overflowing floats, lone surrogates (``"\\ud800"``) and NUL characters in any string
    (PostgreSQL cannot store either, Slack cannot show them).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadBody(f"body is not valid UTF-8: {err}") from None
    try:
        data = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
    except BadBody:
        raise
    except json.JSONDecodeError as err:
        raise BadBody(f"body is not valid JSON: {err}") from None
    except RecursionError:  # the C parser's own guard, at about 1,000 levels
        raise BadBody(f"body nests deeper than {max_depth} levels") from None
    except ValueError as err:
        raise BadBody(f"body is not JSON this intake can read: {err}") from None
    _check_structure(data, max_depth)
    return data


def _parse_int(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise BadBody(f"body holds an integer of {len(literal):,} digits (at most {MAX_INTEGER_DIGITS})")
    return int(literal)


def _parse_float(literal: str) -> float:
    if len(literal) > 64:
        raise BadBody(f"body holds a number literal of {len(literal):,} characters")
    value = float(literal)
    if not math.isfinite(value):
        raise BadBody(f"body holds a number out of range ({literal[:20]}...)")
    return value


def _parse_constant(name: str) -> Any:
    raise BadBody(f"body holds {name}, which is not JSON")


def _check_structure(data: Any, max_depth: int) -> None:
    stack: list[tuple[Any, str, int]] = [(data, "body", 0)]
    while stack:
        item, where, depth = stack.pop()
        if depth > max_depth:
            raise BadBody(f"body nests deeper than {max_depth} levels")
        if isinstance(item, str):
            _check_text(item, where)
        elif isinstance(item, Mapping):
            for key, value in item.items():
                _check_text(key, f"{where} (a key)")
                stack.append((value, f"{where}.{_short(key)}", depth + 1))
        elif isinstance(item, list):
            stack.extend((value, f"{where}[{index}]", depth + 1) for index, value in enumerate(item))


def _check_text(text: str, where: str) -> None:
    if "\x00" in text:
        raise BadBody(f"{where}: holds a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadBody(f"{where}: holds a lone surrogate (invalid Unicode)") from None


def _short(key: str) -> str:
    shown = key.encode("utf-8", "replace").decode("utf-8")
    return shown[:40] + ("..." if len(shown) > 40 else "")


# -- limits ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Limits:
    """Bounds on what one delivery may carry; ``limits`` in include/config/alert_intake.yaml overrides each."""

    max_alerts: int = 1000
    max_labels: int = 64
    max_label_name_chars: int = 128
    max_label_value_chars: int = 1024
    max_annotations: int = 32
    max_annotation_chars: int = 8192
    max_url_chars: int = 2048
    max_text_chars: int = 1024  # receiver, groupKey
    #: How far ahead of this server's clock a startsAt may be (the sender's clock skew).
    max_future_seconds: float = 3600.0
    #: How far ahead an endsAt may be (Alertmanager sets it minutes ahead for a firing alert; a year is a broken clock).
    max_end_future_seconds: float = 7 * 86400.0

    @classmethod
    def from_settings(cls, intake: Mapping[str, Any]) -> Limits:
        configured = intake.get("limits") or {}
        known = {item.name: item.type for item in fields(cls)}
        values: dict[str, Any] = {}
        for name, value in configured.items():
            if name in known:
                values[name] = float(value) if name.endswith("_seconds") else int(value)
        return cls(**values)


def limit_problems(payload: WebhookPayload, limits: Limits) -> list[str]:
    """Every value over its limit, as ``where: what`` lines (empty: within limits)."""
    problems: list[str] = []
    if len(payload.alerts) > limits.max_alerts:
        problems.append(f"alerts: {len(payload.alerts):,} alerts, at most {limits.max_alerts:,} per delivery")
    for name in ("receiver", "groupKey"):
        value = getattr(payload, name)
        if len(value) > limits.max_text_chars:
            problems.append(f"{name}: {len(value):,} characters, at most {limits.max_text_chars:,}")
    if len(payload.externalURL) > limits.max_url_chars:
        problems.append(f"externalURL: {len(payload.externalURL):,} characters, at most {limits.max_url_chars:,}")
    for name in ("groupLabels", "commonLabels"):
        problems += _label_problems(name, getattr(payload, name), limits)
    problems += _annotation_problems("commonAnnotations", payload.commonAnnotations, limits)
    for index, alert in enumerate(payload.alerts[: limits.max_alerts]):
        where = f"alerts[{index}]"
        problems += _label_problems(f"{where}.labels", alert.labels, limits)
        problems += _annotation_problems(f"{where}.annotations", alert.annotations, limits)
        if len(alert.generatorURL) > limits.max_url_chars:
            problems.append(
                f"{where}.generatorURL: {len(alert.generatorURL):,} characters, at most {limits.max_url_chars:,}"
            )
        if len(problems) > 50:  # enough to act on; a 20,000-label payload must not answer 20,000 lines
            problems.append("... more problems not listed")
            break
    return problems


def _label_problems(where: str, labels: Mapping[str, str], limits: Limits) -> list[str]:
    problems = []
    if len(labels) > limits.max_labels:
        problems.append(f"{where}: {len(labels):,} labels, at most {limits.max_labels:,}")
    for name, value in list(labels.items())[: limits.max_labels]:
        if len(name) > limits.max_label_name_chars:
            problems.append(f"{where}: a label name of {len(name):,} characters, at most {limits.max_label_name_chars}")
        if len(value) > limits.max_label_value_chars:
            problems.append(
                f"{where}.{_short(name)}: {len(value):,} characters, at most {limits.max_label_value_chars:,}"
            )
    return problems


def _annotation_problems(where: str, annotations: Mapping[str, str], limits: Limits) -> list[str]:
    problems = []
    if len(annotations) > limits.max_annotations:
        problems.append(f"{where}: {len(annotations):,} annotations, at most {limits.max_annotations:,}")
    for name, value in list(annotations.items())[: limits.max_annotations]:
        if len(name) > limits.max_label_name_chars:
            problems.append(
                f"{where}: an annotation name of {len(name):,} characters, at most {limits.max_label_name_chars}"
            )
        if len(value) > limits.max_annotation_chars:
            problems.append(
                f"{where}.{_short(name)}: {len(value):,} characters, at most {limits.max_annotation_chars:,}"
            )
    return problems


def timestamp_problems(alert: Alert, now: datetime, limits: Limits) -> list[str]:
    """startsAt must not lie ahead of ``now`` by more than the allowed clock skew, nor endsAt by more than a week
    (the model checks the format and the year)."""
    problems = []
    ahead = alert.startsAt.astimezone(UTC) - now.astimezone(UTC)
    if ahead > timedelta(seconds=limits.max_future_seconds):
        problems.append(
            f"startsAt {alert.starts_at_utc} is {_duration(ahead)} in the future (sender's clock is wrong?)"
        )
    ends_at = alert.ends_at_utc
    if ends_at is not None and alert.endsAt is not None:
        ahead = alert.endsAt.astimezone(UTC) - now.astimezone(UTC)
        if ahead > timedelta(seconds=limits.max_end_future_seconds):
            problems.append(f"endsAt {ends_at} is {_duration(ahead)} in the future (sender's clock is wrong?)")
    return problems


def target_problem(target: str) -> str | None:
    """Why a route's target cannot be stored (it becomes a lock key and a column value), or None."""
    if len(target) > TARGET_COLUMN_CHARS:
        return f"target is {len(target):,} characters, at most {TARGET_COLUMN_CHARS:,}"
    return None


def _duration(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds >= 86400:
        return f"{seconds / 86400:,.0f} days"
    return f"{seconds / 3600:.1f} h"
