from __future__ import annotations

from dataclasses import dataclass

import pytest

from toilless.common.config import (
    ConfigError,
    deep_merge,
    load_config,
    parse_override,
    read_defaults,
    typed_settings,
)


@dataclass(frozen=True)
class _Limits:
    count: int = 1
    minutes: float = 2.0
    spare: int = 7


def test_deep_merge_merges_mappings_and_replaces_the_rest() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    merged = deep_merge(base, {"a": {"c": [3]}, "e": 2})
    assert merged == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}  # untouched


def test_read_defaults_returns_a_copy() -> None:
    first = read_defaults("toilless")
    first["environment"] = "changed"
    assert read_defaults("toilless")["environment"] == "sandbox"


def test_every_channel_has_a_connection_and_an_api_channel() -> None:
    slack = read_defaults("toilless")["slack"]
    assert set(slack["channels"]) == set(slack["api_channels"])
    assert {"urgent", "non_urgent", "compliance"} <= set(slack["channels"])


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '"text"'])
def test_malformed_override_is_an_error(raw: str) -> None:
    with pytest.raises(ConfigError, match="toilless_toilless"):
        parse_override("toilless", raw)


def test_missing_config_file_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_defaults("no_such_config")


def test_load_config_applies_the_variable_override(set_variable) -> None:
    set_variable("toilless_toilless", {"environment": "prod", "slack": {"channels": {"extra": "slack_extra"}}})
    config = load_config("toilless")
    assert config["environment"] == "prod"
    assert config["slack"]["channels"]["extra"] == "slack_extra"
    assert config["slack"]["channels"]["urgent"] == "slack_urgent"


def test_typed_settings_converts_by_annotation_and_keeps_optional_defaults() -> None:
    limits = typed_settings(_Limits, {"count": "3", "minutes": 4, "unrelated": "x"}, what="limits", optional=["spare"])
    assert limits == _Limits(count=3, minutes=4.0, spare=7)
    assert isinstance(limits.minutes, float)


@pytest.mark.parametrize(
    "config",
    [
        pytest.param({"minutes": 4}, id="required-missing"),
        pytest.param({"count": "many", "minutes": 4}, id="not-a-number"),
        pytest.param({"count": 1, "minutes": 4, "spare": None}, id="optional-given-as-null"),
    ],
)
def test_typed_settings_names_what_is_incomplete(config: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"^limits are incomplete or not numbers: "):
        typed_settings(_Limits, config, what="limits", optional=["spare"])
