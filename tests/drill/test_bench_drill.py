"""benchmarks/bench_drill.py: one summary row per scenario, attached to a running sandbox without starting one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import bench_drill
from sandbox.drill import report, runner, scenarios


def test_one_row_per_scenario_and_a_drill_that_cannot_start_is_a_failed_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready = tmp_path / "ready.json"
    ready.write_text(json.dumps({"published": {}}), encoding="utf-8")
    monkeypatch.setenv("TOILLESS_DRILL_READY_FILE", str(ready))
    monkeypatch.setenv("TOILLESS_DRILL_BUDGET", "300")
    monkeypatch.setattr(runner, "start_sandbox", lambda *a, **k: pytest.fail("attached: no sandbox may start"))
    seen: list[tuple[str, float]] = []

    def fake_run(scenario: scenarios.Scenario, facts: dict[str, Any], out: Path, **_: Any) -> runner.Outcome:
        seen.append((scenario.name, scenario.budget_seconds))
        if scenario.name == "noisy_5xx":
            raise RuntimeError("the sandbox runs no Prometheus/Alertmanager")
        found = report.Figures(detect=5.0, acknowledge=20.0, first_mitigation=30.0, recovery=40.0)
        return runner.Outcome(scenario.name, True, out / f"{scenario.name}.md", found, [])

    monkeypatch.setattr(runner, "run", fake_run)
    rows = bench_drill.run(tmp_path)
    assert [name for name, _ in seen] == scenarios.available()
    assert {budget for _, budget in seen} == {300.0}
    by_scenario = {row["metric"]: row for row in rows}
    assert set(by_scenario) == set(scenarios.available())
    assert by_scenario["bad_deploy"]["met"] is True
    assert "MTTR 40.0 s" in by_scenario["bad_deploy"]["value"]
    assert by_scenario["noisy_5xx"]["met"] is False
    assert "did not start: the sandbox runs no Prometheus/Alertmanager" in by_scenario["noisy_5xx"]["notes"]
    assert all("load " in row["notes"] for row in rows)
    assert all(row["benchmark"] == "drill" for row in rows)


def test_one_scenario_re_measured_keeps_the_others_rows_with_their_date(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import json

    from benchmarks import bench_drill

    results = tmp_path / "results.json"
    last = {
        "date": "2026-01-01 00:00 UTC",
        "rows": [{"metric": "bad_deploy", "notes": "x"}, {"metric": "dns", "notes": ""}],
    }
    results.write_text(json.dumps({"bench_drill": last}))
    monkeypatch.setattr(bench_drill, "__file__", str(tmp_path / "bench_drill.py"))

    kept = bench_drill._kept_rows({"bad_deploy"})

    assert kept == [{"metric": "dns", "notes": "measured 2026-01-01 00:00 UTC"}]
