"""PromQL and Prometheus HTTP API contracts, checked before anything is sent. Pure, no Airflow import.

- :func:`check_promql`: an offline structural check of an expression (non-empty, bounded, no control characters,
  strings closed, brackets balanced). It cannot type-check PromQL (that needs Prometheus' parser): an expression that
  passes may still be refused by the server, and :class:`toilless.hooks.prometheus.PrometheusHook` turns that refusal
  (``bad_data``) into a clear, non-retried :class:`PromQLError`.
- :func:`promql_string` / :func:`promql_regex_literal`: a label value as a PromQL string literal (escaped), for
  ``label="..."`` and ``label=~"..."`` (regex metacharacters escaped, so a value matches itself only).
- :func:`render`: fill ``$name`` placeholders of a configured expression with checked, quoted values.
- :func:`check_range`: start, end and step of a range query; Prometheus refuses more than 11,000 points per series.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Mapping
from datetime import datetime, timedelta

from toilless.common.errors import InvalidInput

#: Prometheus refuses a range query whose (end - start) / step exceeds this ("exceeded maximum resolution of 11,000
#: points per timeseries").
MAX_POINTS_PER_SERIES = 11_000
#: Longest expression sent: a configured query is a few hundred characters; 100 pod names in a regex fit easily.
MAX_EXPR_CHARS = 20_000
#: Longest label value put into a selector (Kubernetes names are at most 253 characters).
MAX_LABEL_VALUE_CHARS = 1024

LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*\Z")
#: RE2 metacharacters (Prometheus matches with Go's RE2, anchored).
_REGEX_META = frozenset("\\.+*?()|[]{}^$")
_CLOSERS = {")": "(", "]": "[", "}": "{"}


class PromQLError(InvalidInput):
    """A PromQL expression, a label value or a range that Prometheus would refuse; the message says which and why."""


def check_promql(expr: object, *, what: str = "PromQL") -> str:
    """``expr`` stripped, or :class:`PromQLError` naming the first structural fault and its position."""
    if not isinstance(expr, str):
        raise PromQLError(f"{what} must be a string, not {type(expr).__name__}")
    text = expr.strip()
    if not text:
        raise PromQLError(f"{what} is empty")
    if len(text) > MAX_EXPR_CHARS:
        raise PromQLError(f"{what} is {len(text):,} characters, more than {MAX_EXPR_CHARS:,}")
    stack: list[tuple[str, int]] = []
    index = 0
    while index < len(text):
        char = text[index]
        if ord(char) < 32 and char not in "\t\n\r":
            raise PromQLError(f"{what}: control character {char!r} at position {index}")
        if char == "#":  # a comment runs to the end of the line
            end = text.find("\n", index)
            index = len(text) if end < 0 else end
            continue
        if char in "\"'`":
            index = _end_of_string(text, index, what)
            continue
        if char in "([{":
            stack.append((char, index))
        elif char in _CLOSERS:
            if not stack or stack[-1][0] != _CLOSERS[char]:
                raise PromQLError(f"{what}: unbalanced {char!r} at position {index}: {_excerpt(text, index)}")
            stack.pop()
        index += 1
    if stack:
        opener, position = stack[-1]
        raise PromQLError(f"{what}: {opener!r} at position {position} is never closed: {_excerpt(text, position)}")
    return text


def _end_of_string(text: str, start: int, what: str) -> int:
    quote = text[start]
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == "\\" and quote != "`":
            index += 2
            continue
        if char == quote:
            return index + 1
        if char == "\n" and quote != "`":
            break
        index += 1
    raise PromQLError(f"{what}: string opened at position {start} is never closed: {_excerpt(text, start)}")


def _excerpt(text: str, position: int, width: int = 30) -> str:
    return repr(text[max(0, position - width) : position + width])


def check_label_name(name: object) -> str:
    if not isinstance(name, str) or not LABEL_NAME.match(name):
        raise PromQLError(f"label name {str(name)[:80]!r} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)")
    return name


def check_label_value(value: object, *, what: str = "label value") -> str:
    """A label value that may go into a selector: a string, valid UTF-8, bounded, no control characters."""
    if not isinstance(value, str):
        raise PromQLError(f"{what} must be a string, not {type(value).__name__}")
    if len(value) > MAX_LABEL_VALUE_CHARS:
        raise PromQLError(f"{what} is {len(value):,} characters, more than {MAX_LABEL_VALUE_CHARS}")
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise PromQLError(f"{what} {value[:80]!r} contains a control character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise PromQLError(f"{what} {value[:80]!r} is not valid UTF-8") from err
    return value


def promql_string(value: object, *, what: str = "label value") -> str:
    """``value`` as a double-quoted PromQL string literal: ``a"b`` -> ``"a\\"b"``."""
    text = check_label_value(value, what=what)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def regex_literal(value: object, *, what: str = "label value") -> str:
    """``value`` with RE2 metacharacters escaped (unquoted): matches exactly ``value`` inside a ``=~`` regex."""
    text = check_label_value(value, what=what)
    return "".join("\\" + char if char in _REGEX_META else char for char in text)


def promql_regex_literal(value: object, *, what: str = "label value") -> str:
    """``value`` as a quoted ``=~`` regex that matches exactly ``value``."""
    return promql_string(regex_literal(value, what=what), what=what)


def render(template: str, values: Mapping[str, str], *, what: str = "PromQL") -> str:
    """``template`` with ``$name`` / ``${name}`` replaced by ``values`` (already quoted or checked by the caller).

    An unknown placeholder or a stray ``$`` is a :class:`PromQLError`, not a query sent with a hole in it.
    """
    text = check_promql(template, what=what)
    try:
        rendered = string.Template(text).substitute(values)
    except KeyError as err:
        raise PromQLError(f"{what}: unknown placeholder ${err.args[0]} (known: {', '.join(sorted(values))})") from err
    except ValueError as err:
        raise PromQLError(f"{what}: {err} (write $$ for a literal $)") from err
    return check_promql(rendered, what=what)


def placeholders(template: str) -> set[str]:
    """The ``$name`` placeholders ``template`` uses."""
    found: set[str] = set()
    for match in string.Template.pattern.finditer(template):
        name = match.group("named") or match.group("braced")
        if name:
            found.add(name)
    return found


def duration(seconds: float) -> str:
    """A PromQL duration for ``seconds`` (``3600`` -> ``3600s``; ``0.5`` -> ``500ms``)."""
    if not math.isfinite(seconds) or seconds <= 0:
        raise PromQLError(f"duration must be a positive number of seconds, not {seconds!r}")
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"


def timestamp(moment: datetime | float | int, *, what: str = "time") -> float:
    """Unix seconds for ``moment``; a naive datetime is refused (its zone would be a guess)."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise PromQLError(f"{what} {moment.isoformat()} has no time zone")
        return moment.timestamp()
    if isinstance(moment, bool) or not isinstance(moment, (int, float)) or not math.isfinite(moment):
        raise PromQLError(f"{what} must be an aware datetime or Unix seconds, not {moment!r}")
    return float(moment)


def seconds(step: timedelta | float | int, *, what: str = "step") -> float:
    value = step.total_seconds() if isinstance(step, timedelta) else step
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise PromQLError(f"{what} must be a positive duration, not {step!r}")
    return float(value)


def check_range(start: datetime | float, end: datetime | float, step: timedelta | float) -> tuple[float, float, float]:
    """``(start, end, step)`` in Unix seconds, or :class:`PromQLError` if Prometheus would refuse the range."""
    start_s = timestamp(start, what="start")
    end_s = timestamp(end, what="end")
    step_s = seconds(step)
    if end_s < start_s:
        raise PromQLError(f"range ends ({end_s}) before it starts ({start_s})")
    # Prometheus' own test (web/api/v1): (end - start) / step > 11,000 is refused.
    if (end_s - start_s) / step_s > MAX_POINTS_PER_SERIES:
        points = math.floor((end_s - start_s) / step_s) + 1
        raise PromQLError(
            f"range of {end_s - start_s:,.0f}s at a {step_s:g}s step is {points:,} points per series; Prometheus "
            f"refuses more than {MAX_POINTS_PER_SERIES:,}: use a step of at least "
            f"{math.ceil((end_s - start_s) / MAX_POINTS_PER_SERIES)}s"
        )
    return start_s, end_s, step_s
