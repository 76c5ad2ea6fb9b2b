"""Every validating pattern in the plugins ends with ``\\Z``, never ``$``.

In Python ``$`` also matches before a trailing newline, so ``re.match(r"^[a-z]+$", "name\\n")`` succeeds: a value
checked that way reaches an API (a Kubernetes name, an ARN, a Slack user id) with the newline still in it. Two
SOPs' validators had exactly that hole (found by their tests); this keeps every other pattern from having it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.fixtures.pyparse import parse

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
#: ``$`` not escaped and not inside a character class.
_END_DOLLAR = re.compile(r"(?<!\\)\$(?![^\[]*\])")


def _patterns() -> list[tuple[str, int, str]]:
    found = []
    for path in sorted(PLUGINS.rglob("*.py")):
        for node in ast.walk(parse(path)):
            func = node.func if isinstance(node, ast.Call) else None
            if not (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id == "re"
                and func.attr in ("compile", "match", "fullmatch", "search")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                continue
            found.append((str(path.relative_to(PLUGINS)), node.lineno, node.args[0].value))
    return found


def test_the_scan_sees_the_plugins_patterns() -> None:
    patterns = _patterns()
    assert len(patterns) > 30
    assert any(pattern.endswith("\\Z") for _, _, pattern in patterns)


def test_no_pattern_is_anchored_with_dollar() -> None:
    offenders = [f"{where}:{line}: {pattern!r}" for where, line, pattern in _patterns() if _END_DOLLAR.search(pattern)]
    assert offenders == [], "anchor with \\Z, not $ ($ accepts a trailing newline):\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    ("module", "name"),
    [
        pytest.param("toilless.common.kubernetes_contracts", "_DNS1123_LABEL", id="kubernetes-label"),
        pytest.param("toilless.common.aws_contracts", "_METRIC_QUERY_ID", id="cloudwatch-query-id"),
        pytest.param("toilless.intake.routing", "_DAG_ID", id="route-dag-id"),
        pytest.param("toilless.slack_actions.buttons", "SLACK_USER_ID", id="slack-user"),
    ],
)
def test_a_trailing_newline_is_refused(module: str, name: str) -> None:
    import importlib

    pattern = getattr(importlib.import_module(module), name)
    valid = {"_DNS1123_LABEL": "web", "_METRIC_QUERY_ID": "cpu0", "_DAG_ID": "app_down", "SLACK_USER_ID": "U012AB3CD"}
    assert pattern.match(valid[name])
    assert not pattern.match(valid[name] + "\n")
