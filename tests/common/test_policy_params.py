"""Params may tighten a configured policy, never loosen it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from toilless.common.config import (
    AT_LEAST,
    AT_MOST,
    FREE,
    OFF_ONLY,
    LooseningParamError,
    ParamRule,
    narrower_window,
    tighten,
)
from toilless.common.policies import WeeklyWindow

CONFIGURED = {"cap": 2000, "threshold": 90, "auto": True, "manual_only": False, "report_at": 80}
RULES = (
    ParamRule("cap_param", "cap", AT_MOST, "largest allocation"),
    ParamRule("threshold_param", "threshold", AT_LEAST),
    ParamRule("auto_param", "auto", OFF_ONLY),
    ParamRule("manual_param", "manual_only", OFF_ONLY),
    ParamRule("report_param", "report_at", FREE),
)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({}, {}, id="nothing-set"),
        pytest.param({"cap_param": None, "auto_param": None}, {}, id="empty-params-keep-config"),
        pytest.param({"cap_param": 500}, {"cap": 500}, id="lower-cap"),
        pytest.param({"cap_param": 2000}, {"cap": 2000}, id="same-cap"),
        pytest.param({"threshold_param": 95}, {"threshold": 95}, id="higher-threshold"),
        pytest.param({"auto_param": False}, {"auto": False}, id="auto-off"),
        pytest.param({"auto_param": True}, {"auto": True}, id="auto-on-when-configured-on"),
        pytest.param({"manual_param": False}, {"manual_only": False}, id="off-stays-off"),
        pytest.param({"report_param": 10}, {"report_at": 10}, id="free-setting-any-value"),
    ],
)
def test_tightening_params_are_applied(params, expected) -> None:
    merged, notes = tighten(CONFIGURED, params, RULES, config_name="sop")
    assert merged == {**CONFIGURED, **expected}
    assert len(notes) == sum(1 for key, value in expected.items() if CONFIGURED[key] != value)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        pytest.param({"cap_param": 2001}, "cap_param = 2001 would loosen", id="higher-cap"),
        pytest.param({"cap_param": 1e9}, "at most 2000", id="issue-10-cap-1e9"),
        pytest.param({"threshold_param": 89.9}, "at least 90", id="lower-threshold"),
        pytest.param({"manual_param": True}, "switched off in the configuration", id="switch-on"),
        pytest.param({"cap_param": "500"}, "must be a number", id="string-number"),
        pytest.param({"cap_param": True}, "must be a number", id="bool-as-number"),
        pytest.param({"cap_param": float("nan")}, "finite", id="nan"),
        pytest.param({"threshold_param": float("inf")}, "finite", id="infinity"),
        pytest.param({"auto_param": "false"}, "true or false", id="string-bool"),
    ],
)
def test_loosening_params_are_refused(params, message) -> None:
    with pytest.raises(LooseningParamError, match=message):
        tighten(CONFIGURED, params, RULES, config_name="sop")


def test_refusal_says_how_to_loosen_instead() -> None:
    with pytest.raises(LooseningParamError) as raised:
        tighten(CONFIGURED, {"cap_param": 4000}, RULES, config_name="rds_storage_guard")
    text = str(raised.value)
    assert "include/config/rds_storage_guard.yaml" in text
    assert "toilless_rds_storage_guard" in text
    assert "largest allocation" in text


def test_unknown_direction_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown direction"):
        ParamRule("p", "s", "sideways")


HOURS = WeeklyWindow.from_config(
    {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00", "timezone": "Europe/Berlin"}
)
NOW = datetime.now(UTC)


def hours(days: list[str], start: str, end: str, timezone: str = "Europe/Berlin") -> dict[str, object]:
    """A business_hours Param value."""
    return {"days": days, "start": start, "end": end, "timezone": timezone}


@pytest.mark.parametrize(
    ("spec", "ok"),
    [
        pytest.param(hours(["monday"], "10:00", "12:00"), True, id="one-morning"),
        pytest.param(hours(["mon", "tue", "wed", "thu", "fri"], "09:00", "17:00"), True, id="same-hours"),
        pytest.param(hours(["saturday"], "10:00", "12:00"), False, id="weekend"),
        pytest.param(hours(["monday"], "08:59", "12:00"), False, id="one-minute-early"),
        pytest.param(hours(["monday"], "00:00", "23:59"), False, id="all-day"),
        pytest.param(hours(["monday"], "09:00", "17:00", "America/New_York"), False, id="other-timezone-shifts-it"),
        pytest.param(hours(["monday"], "22:00", "02:00"), False, id="overnight"),
    ],
)
def test_run_business_hours_may_only_narrow(spec, ok: bool) -> None:
    for start in (NOW, NOW + timedelta(days=120)):  # winter and summer time alike
        if ok:
            assert narrower_window(HOURS, spec, param="business_hours", config_name="sop", now=start) is not None
        else:
            with pytest.raises(LooseningParamError, match="wider than the configured business hours"):
                narrower_window(HOURS, spec, param="business_hours", config_name="sop", now=start)


def test_bad_window_param_is_refused_clearly() -> None:
    with pytest.raises(LooseningParamError, match="unknown weekday"):
        narrower_window(
            HOURS, {"days": ["someday"], "start": "09:00", "end": "10:00"}, param="p", config_name="s", now=NOW
        )


def test_no_run_hours_keeps_the_configured_ones() -> None:
    assert narrower_window(HOURS, None, param="p", config_name="s", now=NOW) is None
