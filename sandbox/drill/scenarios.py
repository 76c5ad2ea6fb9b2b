"""Drill scenarios: data (``sandbox/drill/scenarios/<name>.yaml``) checked before anything starts.

A scenario names its fault injector (``sandbox.drill.injectors``), the exporter Prometheus scrapes
(``sandbox.drill.exporters``), the alert a real Prometheus should raise, the runbook
DAG the alert route starts, the recovery check and the time budget. Bad input fails here with :class:`DrillError`
(exit code 2), naming the scenario or the missing piece, so a typo never starts a sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sandbox.service import PROJECT_ROOT

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
DAGS_DIR = PROJECT_ROOT / "dags"


class DrillError(Exception):
    """Bad drill input (unknown scenario, missing runbook, malformed scenario file): exit code 2."""


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    injector: str
    exporter: str
    alert_name: str
    alert_expr: str
    alert_for: str
    alert_labels: dict[str, str]
    runbook: str
    recovery_check: str
    sustain_seconds: float
    budget_seconds: float
    expect: dict[str, Any] = field(default_factory=dict)
    #: sandbox.drill.injectors.RESTORERS: undoes the fault after the drill (empty: the runbook's recovery suffices).
    restore: str = ""
    #: A scheduled runbook: inject only when none of its runs is active and its next scheduled run is at least this
    #: far off, so the alert's run is the one that acts (0: no wait).
    schedule_gap_seconds: float = 0.0
    #: sandbox.drill.preparers: the healthy baseline and Variable overrides set before the fault (optional).
    prepare: str | None = None
    #: The option the drill chooses, as the on-call person, on the runbook's approval requests (Airflow's HITL REST
    #: route, the one the UI uses); None: the drill answers none.
    approval: str | None = None
    #: False for a fault that takes nothing down (the noisy single 5xx): no recovery to verify, and the drill's
    #: on-call person is not woken to acknowledge; the drill ends when the incident's run has reported.
    outage: bool = True

    def rule(self) -> dict[str, Any]:
        """The Prometheus alerting rule."""
        return {
            "alert": self.alert_name,
            "expr": self.alert_expr,
            "for": self.alert_for,
            "labels": dict(self.alert_labels),
        }


def _flag(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{key} must be true or false, got {value!r}")
    return value


def available(directory: Path | None = None) -> list[str]:
    return sorted(path.stem for path in (directory or SCENARIO_DIR).glob("*.yaml"))


def runbook_exists(dag_id: str, dags_dir: Path | None = None) -> bool:
    """A DAG file defines ``dag_id``: the house rule is one DAG per file named after it (tests/dags/)."""
    return ((dags_dir or DAGS_DIR) / f"{dag_id}.py").is_file()


def load(name: str, directory: Path | None = None, dags_dir: Path | None = None) -> Scenario:
    """The scenario ``name``, checked: known injector and recovery check, an existing runbook DAG."""
    from sandbox.drill.exporters import EXPORTERS
    from sandbox.drill.injectors import INJECTORS, RESTORERS
    from sandbox.drill.preparers import PREPARERS
    from sandbox.drill.recovery import CHECKS

    directory = directory or SCENARIO_DIR
    dags_dir = dags_dir or DAGS_DIR
    names = available(directory)
    if name not in names:
        raise DrillError(f"unknown drill scenario {name!r} (known: {', '.join(names) or 'none'})")
    path = directory / f"{name}.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        alert = raw["alert"]
        scenario = Scenario(
            name=str(raw["name"]),
            description=str(raw.get("description", "")),
            injector=str(raw["injector"]),
            exporter=str(raw["exporter"]),
            alert_name=str(alert["name"]),
            alert_expr=str(alert["expr"]),
            alert_for=str(alert.get("for", "0s")),
            alert_labels={str(k): str(v) for k, v in (alert.get("labels") or {}).items()},
            runbook=str(raw["runbook"]),
            recovery_check=str(raw["recovery"]["check"]),
            sustain_seconds=float(raw["recovery"].get("sustain_seconds", 5)),
            budget_seconds=float(raw["budget_seconds"]),
            expect=dict(raw.get("expect") or {}),
            restore=str(raw.get("restore") or ""),
            schedule_gap_seconds=float(raw.get("schedule_gap_seconds") or 0),
            prepare=str(raw["prepare"]) if raw.get("prepare") else None,
            approval=str(raw["approval"]) if raw.get("approval") else None,
            outage=_flag(raw.get("outage", True), "outage"),
        )
    except (yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError) as err:
        raise DrillError(f"drill scenario {name!r} ({path}) is malformed: {err!r}") from err
    if scenario.name != name:
        raise DrillError(f"drill scenario file {path} says name {scenario.name!r}, expected {name!r}")
    if not runbook_exists(scenario.runbook, dags_dir):
        raise DrillError(
            f"drill scenario {name!r}: runbook DAG {scenario.runbook!r} does not exist ({dags_dir / scenario.runbook}.py)"
        )
    if scenario.injector not in INJECTORS:
        raise DrillError(
            f"drill scenario {name!r}: unknown injector {scenario.injector!r} (known: {', '.join(INJECTORS)})"
        )
    if scenario.exporter not in EXPORTERS:
        raise DrillError(
            f"drill scenario {name!r}: unknown exporter {scenario.exporter!r} (known: {', '.join(EXPORTERS)})"
        )
    if scenario.restore and scenario.restore not in RESTORERS:
        raise DrillError(
            f"drill scenario {name!r}: unknown restore {scenario.restore!r} (known: {', '.join(RESTORERS)})"
        )
    if scenario.prepare is not None and scenario.prepare not in PREPARERS:
        raise DrillError(
            f"drill scenario {name!r}: unknown preparer {scenario.prepare!r} (known: {', '.join(PREPARERS)})"
        )
    if scenario.recovery_check not in CHECKS:
        raise DrillError(f"drill scenario {name!r}: unknown recovery check {scenario.recovery_check!r}")
    if scenario.budget_seconds <= 0:
        raise DrillError(f"drill scenario {name!r}: budget_seconds must be positive")
    return scenario
