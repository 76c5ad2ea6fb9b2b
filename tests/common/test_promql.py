"""The offline PromQL contract: structure check, label quoting, placeholders, range limits."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from toilless.common import promql
from toilless.common.errors import InvalidInput
from toilless.common.promql import PromQLError


@pytest.mark.parametrize(
    "expr",
    [
        pytest.param("up", id="metric"),
        pytest.param('sum by (pod) (rate(x{code=~"5.."}[5m]))', id="aggregation"),
        pytest.param('x{a="}([{"}', id="brackets-inside-string"),
        pytest.param("x{a='it\\'s'}", id="escaped-single-quote"),
        pytest.param("x{a=~`a\\d(`}", id="raw-string"),
        pytest.param("up # a comment with ( unbalanced\n + 1", id="comment"),
        pytest.param("histogram_quantile(0.95, sum by (le) (rate(h_bucket[1h])))", id="histogram"),
    ],
)
def test_check_promql_accepts(expr: str) -> None:
    assert promql.check_promql(f"  {expr} ") == expr.strip()


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param("   ", "empty", id="blank"),
        pytest.param(42, "must be a string", id="not-a-string"),
        pytest.param("sum(rate(x[5m])", "never closed", id="unclosed-paren"),
        pytest.param("x[5m]]", "unbalanced", id="extra-bracket"),
        pytest.param("sum(x]", "unbalanced", id="mismatched"),
        pytest.param('x{a="open}', "string opened", id="unclosed-string"),
        pytest.param("x\x00", "control character", id="nul"),
        pytest.param("x" * (promql.MAX_EXPR_CHARS + 1), "more than", id="too-long"),
    ],
)
def test_check_promql_refuses(expr: object, message: str) -> None:
    with pytest.raises(PromQLError, match=message):
        promql.check_promql(expr)


def test_promql_error_is_invalid_input_so_it_is_not_retried() -> None:
    assert issubclass(PromQLError, InvalidInput)


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        pytest.param("web", '"web"', id="plain"),
        pytest.param('a"b', '"a\\"b"', id="quote"),
        pytest.param("a\\b", '"a\\\\b"', id="backslash"),
        pytest.param("ünï", '"ünï"', id="utf8"),
    ],
)
def test_promql_string(value: str, literal: str) -> None:
    assert promql.promql_string(value) == literal


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("a\nb", id="newline"),
        pytest.param("x" * 1025, id="too-long"),
        pytest.param(7, id="not-a-string"),
        pytest.param("\ud800", id="lone-surrogate"),
    ],
)
def test_label_value_refused(value: object) -> None:
    with pytest.raises(PromQLError):
        promql.promql_string(value)


def test_regex_literal_matches_only_itself() -> None:
    value = "web.api-v1+(x)"
    quoted = promql.promql_regex_literal(value)
    # Go's RE2 and Python's re agree on these escapes; unquote the PromQL string first.
    pattern = quoted[1:-1].replace("\\\\", "\\")
    assert re.fullmatch(pattern, value)
    assert not re.fullmatch(pattern, "webXapi-v1+(x)")


@pytest.mark.parametrize("name", [pytest.param("pod", id="plain"), pytest.param("_x9", id="underscore")])
def test_label_name_accepts(name: str) -> None:
    assert promql.check_label_name(name) == name


@pytest.mark.parametrize(
    "name", [pytest.param("9x", id="digit-first"), pytest.param("a-b", id="dash"), pytest.param("", id="empty")]
)
def test_label_name_refuses(name: str) -> None:
    with pytest.raises(PromQLError):
        promql.check_label_name(name)


def test_render_fills_placeholders() -> None:
    rendered = promql.render("x{namespace=$namespace}[$window]", {"namespace": '"shop"', "window": "1h"})
    assert rendered == 'x{namespace="shop"}[1h]'
    assert promql.placeholders("x{a=$a, b=${b}}") == {"a", "b"}


@pytest.mark.parametrize(
    ("template", "message"),
    [
        pytest.param("x{a=$unknown}", "unknown placeholder", id="unknown"),
        pytest.param("x{a=$}", r"\$\$", id="stray-dollar"),
        pytest.param("sum(x{a=$a}", "never closed", id="broken-template"),
    ],
)
def test_render_refuses(template: str, message: str) -> None:
    with pytest.raises(PromQLError, match=message):
        promql.render(template, {"a": '"v"'})


NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_check_range_at_the_limit() -> None:
    start = NOW - timedelta(seconds=11_000)
    assert promql.check_range(start, NOW, timedelta(seconds=1)) == (start.timestamp(), NOW.timestamp(), 1.0)


@pytest.mark.parametrize(
    ("start", "end", "step", "message"),
    [
        pytest.param(NOW - timedelta(seconds=11_001), NOW, 1, "refuses more than 11,000", id="too-many-points"),
        pytest.param(NOW - timedelta(days=7), NOW, timedelta(seconds=15), "at least 55s", id="week-at-15s"),
        pytest.param(NOW, NOW - timedelta(hours=1), 60, "before it starts", id="reversed"),
        pytest.param(NOW - timedelta(hours=1), NOW, 0, "positive", id="zero-step"),
        pytest.param(NOW - timedelta(hours=1), NOW, float("nan"), "positive", id="nan-step"),
        pytest.param(datetime(2026, 1, 1), NOW, 60, "no time zone", id="naive"),
    ],
)
def test_check_range_refuses(start: object, end: object, step: object, message: str) -> None:
    with pytest.raises(PromQLError, match=message):
        promql.check_range(start, end, step)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [pytest.param(3600, "3600s", id="hour"), pytest.param(0.5, "500ms", id="fraction")],
)
def test_duration(seconds: float, text: str) -> None:
    assert promql.duration(seconds) == text
