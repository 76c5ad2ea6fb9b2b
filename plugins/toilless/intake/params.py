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
#: id(schema) -> (schema, validator): a cached DAG's schema objects live as long as the DAG; checking ``is`` keeps a
#: recycled id from matching another schema. Saves serialising the schema per alert (measured in the storm).
_by_identity: dict[int, tuple[Any, Any]] = {}
_lock = threading.Lock()
_MAX_VALIDATORS = 1000  # schemas differ per DAG version and Param; a bound keeps a long-lived API server small


def _validator(schema: dict[str, Any]) -> Any:
    known = _by_identity.get(id(schema))
    if known is not None and known[0] is schema:
        return known[1]
    validator = _validator_for(schema)
    with _lock:
        if len(_by_identity) >= _MAX_VALIDATORS:
            _by_identity.clear()
        _by_identity[id(schema)] = (schema, validator)
    return validator


def _validator_for(schema: dict[str, Any]) -> Any:
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


def validate_conf(params: Any, conf: dict[str, Any]) -> None:
    """``validate_params(params.deep_merge(conf))`` without copying the DAG's Params for every alert.

    ``deep_merge`` deep-copies every Param of the DAG before setting the conf's values (a third of the intake's
    time per accepted alert, profiled in the storm). The same checks, on the same values: a Param the conf sets is
    validated with the conf's value, the others with their default; keys the DAG does not declare become Params
    without a schema in ``deep_merge``, which always validate.
    """
    from airflow.sdk.exceptions import ParamValidationError
    from airflow.serialization.definitions.notset import is_arg_set
    from jsonschema.exceptions import best_match

    for key, param in params.items():
        value = conf[key] if key in conf else param.value
        try:
            if not is_arg_set(value):
                raise ValueError("No value passed")
            error = best_match(_validator(param.schema).iter_errors(value))
            if error is not None:
                raise error
        except Exception as err:
            raise ParamValidationError(f"Invalid input for param {key}: {err}") from None
