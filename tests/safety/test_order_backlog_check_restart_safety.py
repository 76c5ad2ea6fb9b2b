"""The order-processor restart passes the action gate at the moment it restarts: business hours, maintenance window,
once per incident, cool-down, circuit breaker, dry run; its verdict is in the step's result."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine

from tests.sops.order_backlog_check.scenarios import STUCK_DIAGNOSIS
from toilless.common import gate
from toilless.common.config import read_defaults
from toilless.hooks.kubernetes import HISTORY, INCIDENT, RESTARTED_AT, KubernetesDeploymentHook
from toilless.sops.order_backlog_check.settings import resolve_settings
from toilless.sops.order_backlog_check.steps import restart_if_allowed

# Relative to today: a Monday 10:00 UTC (11:00 in Berlin, inside the configured business hours) and the Sunday
# before the next one at 03:00 UTC (inside the Sunday 02:00-04:00 UTC maintenance window).
_TODAY = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0)
MONDAY = _TODAY + timedelta(days=(7 - _TODAY.weekday()) % 7 or 7)
SUNDAY_3AM = MONDAY + timedelta(days=6, hours=-7)
MONDAY_NIGHT = MONDAY + timedelta(hours=12)
INCIDENT_KEY = "stuck:order-11:error-12"
STUCK = STUCK_DIAGNOSIS


class FakeDeployment:
    """The Deployment's pod-template annotations, read and patched through the hook's two methods."""

    def __init__(self, annotations: dict[str, str] | None = None, fail_patches: int = 0) -> None:
        self.annotations = dict(annotations or {})
        self.restarts: list[datetime] = []
        self.fail_patches = fail_patches

    def marker(self) -> dict[str, Any]:
        marker: dict[str, Any] = {}
        for key, name in ((INCIDENT, "incident"), (RESTARTED_AT, "restarted_at"), (HISTORY, "history")):
            if key in self.annotations:
                marker[name] = self.annotations[key]
        return marker

    def restart(self, *, incident_key: str, now: datetime, history: str = "") -> dict:
        if self.fail_patches:
            self.fail_patches -= 1
            raise ConnectionError("API server went away")
        self.annotations.update({RESTARTED_AT: now.isoformat(), INCIDENT: incident_key, HISTORY: history})
        self.restarts.append(now)
        return {"method": "kubernetes", "target": "orders/order-processor", "restarted_at": now.isoformat()}


@pytest.fixture
def deployment(monkeypatch: pytest.MonkeyPatch) -> FakeDeployment:
    fake = FakeDeployment()
    monkeypatch.setattr(KubernetesDeploymentHook, "kubernetes_marker", fake.marker)
    monkeypatch.setattr(KubernetesDeploymentHook, "rollout_restart", fake.restart)
    return fake


def settings(tmp_path: Path, **params: Any) -> dict[str, Any]:
    config = read_defaults("order_backlog_check")
    config["log"]["allowed_roots"] = [str(tmp_path)]
    config["log"]["path"] = str(tmp_path / "order_processing.log")
    return resolve_settings(config, read_defaults("toilless"), params)


def restart_at(moment: datetime, resolved: dict[str, Any], diagnosis: dict[str, Any] = STUCK) -> dict[str, Any]:
    with time_machine.travel(moment, tick=False):
        return restart_if_allowed(resolved, diagnosis)


def test_restart_inside_business_hours_reports_the_gate_verdict(deployment: FakeDeployment, tmp_path: Path) -> None:
    result = restart_at(MONDAY, settings(tmp_path))
    assert result["restarted"] is True
    assert result["gate"]["allowed"] is True
    assert result["gate"]["target"] == "orders/order-processor"
    assert len(deployment.restarts) == 1
    assert gate.decode_history(deployment.annotations[HISTORY]) == (MONDAY,)


def test_gate_is_checked_when_restarting_not_when_settings_were_resolved(
    deployment: FakeDeployment, tmp_path: Path
) -> None:
    """Settings resolved and the verdict reached before the window opened; the restart step runs inside it."""
    with time_machine.travel(SUNDAY_3AM - timedelta(hours=2), tick=False):
        resolved = settings(tmp_path)
    result = restart_at(SUNDAY_3AM, resolved)
    assert result["restarted"] is False
    assert result["gate"]["check"] == gate.TIME_POLICY
    assert deployment.restarts == []


def test_retry_after_the_window_opened_does_not_restart(deployment: FakeDeployment, tmp_path: Path) -> None:
    """The first try failed (API server away) just before the window; the retry runs inside it: no restart."""
    every_day = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00", "end": "23:59"}
    config = read_defaults("order_backlog_check")
    config.update(
        business_hours=every_day,
        log={**config["log"], "allowed_roots": [str(tmp_path)], "path": str(tmp_path / "x.log")},
    )
    resolved = resolve_settings(config, read_defaults("toilless"), {})
    deployment.fail_patches = 1
    with pytest.raises(ConnectionError):
        restart_at(SUNDAY_3AM - timedelta(minutes=65), resolved)
    retried = restart_at(SUNDAY_3AM, resolved)
    assert retried["restarted"] is False
    assert "maintenance window" in retried["reason"]
    assert retried["allowed_from"] == (SUNDAY_3AM + timedelta(hours=1)).isoformat()
    assert deployment.restarts == []


@pytest.mark.parametrize(
    ("moment", "fragment"),
    [
        pytest.param(MONDAY_NIGHT, "outside business hours", id="night"),
        pytest.param(MONDAY - timedelta(hours=22), "outside business hours", id="sunday-noon"),
    ],
)
def test_no_restart_outside_business_hours(deployment: FakeDeployment, tmp_path: Path, moment, fragment) -> None:
    result = restart_at(moment, settings(tmp_path))
    assert result["restarted"] is False
    assert fragment in result["reason"]
    assert result["allowed_from"]
    assert deployment.restarts == []


def test_once_per_incident_even_after_the_cooldown(deployment: FakeDeployment, tmp_path: Path) -> None:
    """The marker names the incident: a later run (cool-down over) does not restart for it again."""
    resolved = settings(tmp_path)
    assert restart_at(MONDAY, resolved)["restarted"] is True
    later = restart_at(MONDAY + timedelta(hours=3), resolved)
    assert later["restarted"] is False
    assert later["already_done"] is True
    assert later["gate"]["check"] == gate.ONCE_PER_INCIDENT
    assert len(deployment.restarts) == 1


def test_cooldown_holds_a_restart_for_another_incident(deployment: FakeDeployment, tmp_path: Path) -> None:
    resolved = settings(tmp_path)
    assert restart_at(MONDAY, resolved)["restarted"] is True
    other = {"verdict": {**STUCK["verdict"], "incident_key": "stuck:order-12:error-7", "stuck_order": "12"}}
    held = restart_at(MONDAY + timedelta(minutes=20), resolved, other)
    assert held["restarted"] is False
    assert held["gate"]["check"] == gate.COOLDOWN
    assert held["allowed_from"] == (MONDAY + timedelta(hours=1)).isoformat()
    assert restart_at(MONDAY + timedelta(minutes=61), resolved, other)["restarted"] is True
    assert len(deployment.restarts) == 2


def test_circuit_breaker_stops_the_fourth_restart_in_a_day(deployment: FakeDeployment, tmp_path: Path) -> None:
    resolved = settings(tmp_path)
    for hours in range(4):
        diagnosis = {"verdict": {**STUCK["verdict"], "incident_key": f"stuck:order-{hours}:error-1"}}
        result = restart_at(MONDAY - timedelta(hours=1) + timedelta(hours=hours, minutes=5), resolved, diagnosis)
    assert len(deployment.restarts) == 3
    assert result["restarted"] is False
    assert result["gate"]["check"] == gate.CIRCUIT_BREAKER
    assert result["allowed_from"] == (MONDAY + timedelta(days=1, hours=-1, minutes=5)).isoformat()


def test_dry_run_restarts_nothing_and_says_what_it_would_do(deployment: FakeDeployment, tmp_path: Path) -> None:
    result = restart_at(MONDAY, settings(tmp_path, dry_run=True))
    assert result["restarted"] is False
    assert result["reason"].startswith("dry run: would restart")
    assert result["gate"]["check"] == gate.DRY_RUN
    assert deployment.restarts == []


def test_narrower_run_hours_hold_a_restart_the_configured_hours_allow(
    deployment: FakeDeployment, tmp_path: Path
) -> None:
    """Monday 11:00 Berlin is inside the configured hours but outside the run's 13:00-17:00."""
    with time_machine.travel(MONDAY, tick=False):
        resolved = settings(tmp_path, business_hours_start="13:00")
    result = restart_at(MONDAY, resolved)
    assert result["restarted"] is False
    assert "13:00-17:00" in result["reason"]
    assert deployment.restarts == []
