from __future__ import annotations

import pytest

from toilless.common.config import ConfigError, deep_merge, load_config, parse_override, read_defaults


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
