"""``toilless.common.config.number_setting``: the one check of a numeric setting or Param, used by every SOP's settings."""

from __future__ import annotations

from typing import Any

import pytest

from toilless.common.config import ConfigError, number_setting
from toilless.common.errors import InvalidInput


class _SopError(InvalidInput):
    pass


@pytest.mark.parametrize(
    ("value", "bounds", "expected"),
    [
        pytest.param(5, {"above": 0}, 5.0, id="int-above-0"),
        pytest.param(0.5, {"above": 0}, 0.5, id="float-above-0"),
        pytest.param(3.0, {"minimum": 1, "whole": True}, 3, id="whole-float"),
        pytest.param(1, {"minimum": 1, "whole": True}, 1, id="minimum-is-allowed"),
        pytest.param(3600, {"above": 0, "maximum": 3600}, 3600.0, id="maximum-is-allowed"),
    ],
)
def test_number_setting_accepts(value: Any, bounds: dict[str, Any], expected: float) -> None:
    result = number_setting(value, "x", **bounds)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("value", "bounds", "fragment"),
    [
        pytest.param(True, {"above": 0}, "x must be a number above 0, got True", id="bool"),
        pytest.param("5", {"above": 0}, "x must be a number above 0, got '5'", id="text"),
        pytest.param(None, {}, "x must be a number, got None", id="none"),
        pytest.param(float("nan"), {"above": 0}, "x must be a number above 0", id="nan"),
        # int(inf) raises OverflowError: without this check a YAML `.inf` became a retried crash, not a refusal.
        pytest.param(float("inf"), {"minimum": 1, "whole": True}, "x must be a whole number of at least 1", id="inf"),
        pytest.param(
            2.5, {"minimum": 1, "whole": True}, "x must be a whole number of at least 1, got 2.5", id="fraction"
        ),
        pytest.param(0, {"above": 0}, "x must be above 0, got 0", id="zero"),
        pytest.param(-1, {"minimum": 1, "whole": True}, "x must be a whole number of at least 1, got -1", id="below"),
        pytest.param(3601, {"above": 0, "maximum": 3600}, "x must be at most 3600, got 3601", id="above-maximum"),
    ],
)
def test_number_setting_refuses_with_the_setting_named(value: Any, bounds: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        number_setting(value, "x", **bounds)
    assert fragment in str(caught.value)


def test_number_setting_raises_the_sop_s_own_error_with_the_reason() -> None:
    with pytest.raises(_SopError, match=r"t must be above 0, got 0: a threshold of 0 would match everything"):
        number_setting(0, "t", above=0, why=": a threshold of 0 would match everything", error=_SopError)
