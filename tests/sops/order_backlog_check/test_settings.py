"""A run's settings: config, install-wide policies and Params, every value checked before anything is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sops.order_backlog_check.scenarios import resolved_settings
from toilless.sops.order_backlog_check.settings import SettingsError


# -- settings --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"outstanding_threshold": "1000; DROP TABLE orders"}, id="sql-in-threshold"),
        pytest.param({"outstanding_threshold": True}, id="bool-threshold"),
        pytest.param({"oldest_order_age_minutes": 0}, id="zero-age"),
        pytest.param({"stuck_error_repeats": 1}, id="one-repeat"),
        pytest.param({"log_path": "/etc/passwd"}, id="path-outside"),
        pytest.param({"log_path": "/var/log/orders/x.log'; DROP TABLE orders;--"}, id="sql-in-path"),
        pytest.param({"business_hours_timezone": "Mars/Olympus"}, id="bad-timezone"),
        pytest.param({"business_hours_start": "9am"}, id="bad-clock"),
    ],
)
def test_bad_params_are_refused(params: dict[str, object], tmp_path: Path) -> None:
    with pytest.raises(SettingsError):
        resolved_settings(params, tmp_path)


def test_params_override_config(tmp_path: Path) -> None:
    settings = resolved_settings(
        {
            "outstanding_threshold": 50,
            "business_hours_start": "10:00",
            "log_path": str(tmp_path / "other.log"),
            "dry_run": True,
        },
        tmp_path,
    )
    assert settings["thresholds"]["outstanding_orders"] == 50  # type: ignore[index]
    # The run's narrower hours apply on top of the configured ones, which stay as configured.
    assert settings["run_business_hours"]["start"] == "10:00"  # type: ignore[index]
    assert settings["run_business_hours"]["end"] == "17:00"  # type: ignore[index]
    assert settings["business_hours"]["start"] == "09:00"  # type: ignore[index]
    assert settings["log"]["path"] == str(tmp_path / "other.log")  # type: ignore[index]
    assert settings["dry_run"] is True
    # A log chosen by Param is evidence no one configured: diagnose and report only (tests/safety/test_scope_...).
    assert settings["allow_restart"] is False
