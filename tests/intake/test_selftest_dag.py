"""The alert intake self-test DAG triggered by hand (issue 12, defect 13): works without an alert, fails once
(no retry) on an alert it cannot read."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "alert_intake_selftest.py"


@pytest.fixture(scope="module")
def selftest() -> ModuleType:
    spec = importlib.util.spec_from_file_location("alert_intake_selftest_under_test", DAG_FILE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_manual_run_with_the_defaults_works_and_says_the_alert_path_was_not_tested(selftest: ModuleType) -> None:
    received = selftest.confirm_alert_received.function(params={"alert": None, "dry_run": True, "note": ""})

    assert received["manual"] is True
    report = selftest.report_selftest.function(received, params={"dry_run": True})
    assert report["posted"] is False
    assert "NOT exercised" in report["lines"][0]


def test_alert_without_a_readable_start_fails_without_retry(selftest: ModuleType) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    alert = {"alertname": "ToillessIntakeSelfTest", "labels": {}, "startsAt": "soon", "fingerprint": "f"}
    with pytest.raises(AirflowFailException, match="startsAt"):
        selftest.confirm_alert_received.function(params={"alert": alert})


def test_alert_run_measures_the_delay(selftest: ModuleType) -> None:
    alert = {
        "alertname": "ToillessIntakeSelfTest",
        "labels": {"instance": "probe-1"},
        "startsAt": "2026-11-24T11:58:00Z",
        "fingerprint": "f",
    }
    received = selftest.confirm_alert_received.function(params={"alert": alert})

    assert received["manual"] is False
    assert received["instance"] == "probe-1"
    assert received["delay_seconds"] > 0
    lines = selftest.report_selftest.function(received, params={"dry_run": True})["lines"]
    assert "`probe-1`" in lines[0]
