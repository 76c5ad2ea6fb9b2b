"""Params validation for the intake's plan phase: the checks of ``ParamsDict.validate()``, with compiled validators.

Airflow validates each Param with ``jsonschema.validate(value, schema)``, which first checks the *schema* against the
JSON-schema meta-schema on every call: measured in the alert storm, that was about a third of the intake's time per
alert (20 s of 72 s over 350 alerts, profiled). A DAG's Param schemas do not change between deliveries, so each is
checked once and its validator kept; every value is still validated, with the same error text.
"""

from __future__ import annotations

import json
import threading
from typing import Any

_validators: dict[str, Any] = {}
_lock = threading.Lock()
_MAX_VALIDATORS = 1000  # schemas differ per DAG version and Param; a bound keeps a long-lived API server small


def _validator(schema: dict[str, Any]) -> Any:
    from jsonschema import FormatChecker
    from jsonschema.validators import validator_for

    key = json.dumps(schema, sort_keys=True, default=str)
    with _lock:
        found = _validators.get(key)
    if found is not None:
        return found
    cls = validator_for(schema)
    cls.check_schema(schema)
    validator = cls(schema, format_checker=FormatChecker())
    with _lock:
        if len(_validators) >= _MAX_VALIDATORS:
            _validators.clear()
        _validators[key] = validator
    return validator


def validate_params(params: Any) -> None:
    """Raise ParamValidationError as ``params.validate()`` would (merged Params of a serialized DAG)."""
    from airflow.sdk.exceptions import ParamValidationError
    from airflow.serialization.definitions.notset import is_arg_set
    from jsonschema.exceptions import best_match

    for key, param in params.items():
        try:
            if not is_arg_set(param.value):
                raise ValueError("No value passed")
            error = best_match(_validator(param.schema).iter_errors(param.value))
            if error is not None:
                raise error
        except Exception as err:
            raise ParamValidationError(f"Invalid input for param {key}: {err}") from None
