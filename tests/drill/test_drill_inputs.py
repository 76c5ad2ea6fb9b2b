"""Drill scenarios: bad input ends with exit code 2 and a message naming it, before any sandbox starts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sandbox.drill import __main__ as drill_main
from sandbox.drill import scenarios

SHIPPED = yaml.safe_load((scenarios.SCENARIO_DIR / "bad_deploy.yaml").read_text(encoding="utf-8"))


def _write(directory: Path, name: str, **changes: object) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.yaml").write_text(yaml.safe_dump({**SHIPPED, "name": name, **changes}), encoding="utf-8")


def test_shipped_bad_deploy_scenario_loads_with_its_runbook() -> None:
    scenario = scenarios.load("bad_deploy")
    assert scenario.runbook == "app_down"
    assert scenario.rule()["alert"] == "AppDown"
    assert scenario.expect["rollbacks"] == 1


def test_unknown_scenario_exits_2_naming_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[object] = []
    monkeypatch.setattr("sandbox.drill.runner.start_sandbox", lambda *a, **k: started.append(a))
    assert drill_main.main(["no_such_drill"]) == 2
    err = capsys.readouterr().err
    assert "unknown drill scenario 'no_such_drill'" in err
    assert "bad_deploy" in err  # the known ones are listed
    assert started == []


def test_scenario_with_missing_runbook_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, "ghost", runbook="no_such_runbook")
    monkeypatch.setattr(scenarios, "SCENARIO_DIR", tmp_path)
    started: list[object] = []
    monkeypatch.setattr("sandbox.drill.runner.start_sandbox", lambda *a, **k: started.append(a))
    assert drill_main.main(["ghost"]) == 2
    err = capsys.readouterr().err
    assert "'ghost'" in err
    assert "runbook DAG 'no_such_runbook' does not exist" in err
    assert started == []


def test_all_scenarios_are_checked_before_any_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, "fine")
    _write(tmp_path, "zz_broken", runbook="missing_dag")
    monkeypatch.setattr(scenarios, "SCENARIO_DIR", tmp_path)
    started: list[object] = []
    monkeypatch.setattr("sandbox.drill.runner.start_sandbox", lambda *a, **k: started.append(a))
    assert drill_main.main([]) == 2
    assert started == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"injector": "no_injector"}, "unknown injector 'no_injector'"),
        ({"recovery": {"check": "nope"}}, "unknown recovery check 'nope'"),
        ({"alert": None}, "is malformed"),
        ({"budget_seconds": 0}, "budget_seconds must be positive"),
    ],
)
def test_malformed_scenario_is_refused(tmp_path: Path, changes: dict[str, object], message: str) -> None:
    _write(tmp_path, "odd", **changes)
    with pytest.raises(scenarios.DrillError, match=message):
        scenarios.load("odd", directory=tmp_path)


def test_non_positive_budget_override_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert drill_main.main(["bad_deploy", "--budget", "0"]) == 2
    assert "--budget must be positive" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "runbook", "restore", "actions_done"),
    [
        pytest.param("dns_primary_down", "dns_failover", "restore_dns_pair", {"shut down": 1, "failover": 1}, id="dns"),
        pytest.param("replica_lag", "postgres_replica_lag", "restore_replica", {"resume WAL replay": 1}, id="replica"),
    ],
)
def test_shipped_scenarios_load_with_their_restore(
    name: str, runbook: str, restore: str, actions_done: dict[str, int]
) -> None:
    scenario = scenarios.load(name)
    assert (scenario.runbook, scenario.restore, scenario.expect["actions_done"]) == (runbook, restore, actions_done)


def test_unknown_restore_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "odd", restore="no_restore")
    with pytest.raises(scenarios.DrillError, match="unknown restore 'no_restore'"):
        scenarios.load("odd", directory=tmp_path)


@pytest.mark.parametrize(
    ("next_run_after", "active", "expected"),
    [
        pytest.param("1970-01-01T00:05:00Z", 0, 200.0, id="next-run-in-200s"),
        pytest.param("1970-01-01T00:05:00Z", 1, 0.0, id="a-run-is-active"),
        pytest.param(None, 0, float("inf"), id="unscheduled"),
    ],
)
def test_schedule_gap(next_run_after: str | None, active: int, expected: float) -> None:
    from sandbox.drill.runner import schedule_gap

    assert schedule_gap(next_run_after, active, now=100.0) == expected


def test_shipped_noisy_5xx_scenario_loads_without_an_outage() -> None:
    scenario = scenarios.load("noisy_5xx")
    assert scenario.outage is False
    assert scenario.rule()["alert"] == "Service5xx"
    assert scenario.runbook == "service_error_rate"  # the route's runbook, which must not run
    assert scenario.expect == {"silenced": True, "runbook_runs": 0, "max_people_paged": 0}
    assert scenarios.load("bad_deploy").outage is True


def test_scenario_with_a_non_boolean_outage_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, "vague", outage="sometimes")
    monkeypatch.setattr(scenarios, "SCENARIO_DIR", tmp_path)
    assert drill_main.main(["vague"]) == 2
    err = capsys.readouterr().err
    assert "'vague'" in err
    assert "outage must be true or false" in err
