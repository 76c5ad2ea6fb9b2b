"""The shared Param builders: optional fields the trigger form does not require, and the same dry_run/alert."""

from __future__ import annotations

import pytest

from tests.dags.house_rules import form_marks_required
from toilless.common.params import alert_param, dry_run_param, optional_param


@pytest.mark.parametrize(
    ("kind", "default", "schema"),
    [
        pytest.param("integer", None, {"minimum": 1}, id="integer-with-minimum"),
        pytest.param("array", [], {"items": {"type": "string"}}, id="array-default-empty"),
        pytest.param("object", {}, {}, id="object-default-empty"),
        pytest.param("string", None, {"pattern": "^[a-z]+$", "maxLength": 8}, id="string-with-pattern"),
    ],
)
def test_optional_param_allows_null_and_keeps_its_schema(kind: str, default: object, schema: dict) -> None:
    param = optional_param(kind, "A title", "A description.", default=default, **schema)
    assert param.value == default
    assert param.schema == {"type": ["null", kind], "title": "A title", **schema}
    assert param.description == "A description."
    assert not form_marks_required(param.schema)
    param.resolve(None)  # an emptied field is valid


def test_dry_run_and_alert_are_optional_params() -> None:
    dry_run = dry_run_param()
    assert (dry_run.value, dry_run.schema["type"], dry_run.schema["title"]) == (False, ["null", "boolean"], "Dry run")
    assert dry_run_param(True).value is True
    alert = alert_param()
    assert (alert.value, alert.schema["type"], alert.schema["title"]) == (None, ["null", "object"], "Triggering alert")
