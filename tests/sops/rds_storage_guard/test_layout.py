"""rds_storage_guard's package keeps the layout of issue 13: pure modules without Airflow, each under 400 lines, and
steps.py the only one that imports Airflow (inside functions)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.pyparse import parse

REPO = Path(__file__).resolve().parents[3]
PACKAGE = REPO / "plugins" / "toilless" / "sops" / "rds_storage_guard"
MODULES = sorted(path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__")


def airflow_imports(path: Path) -> list[int]:
    """Line numbers of every ``import airflow...`` / ``from airflow... import`` at any level of the module."""
    lines = []
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Import) and any(alias.name.split(".")[0] == "airflow" for alias in node.names):
            lines.append(node.lineno)
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "airflow":
            lines.append(node.lineno)
    return lines


@pytest.mark.parametrize("module", [m for m in MODULES if m != "steps"])
def test_pure_module_never_imports_airflow(module: str) -> None:
    assert airflow_imports(PACKAGE / f"{module}.py") == []


@pytest.mark.parametrize("module", MODULES)
def test_module_is_under_400_lines(module: str) -> None:
    assert len((PACKAGE / f"{module}.py").read_text(encoding="utf-8").splitlines()) < 400


def test_every_module_imports_with_airflow_blocked() -> None:
    """Importing the package (steps.py included: the DAG file imports it at parse time) pulls in no Airflow."""
    names = ", ".join(repr(f"toilless.sops.rds_storage_guard.{module}") for module in MODULES)
    code = (
        "import importlib, sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'airflow' or name.startswith('airflow.'):\n"
        "            raise ImportError('airflow is blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        f"for name in [{names}]:\n"
        "    importlib.import_module(name)\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(REPO / "plugins"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_no_flat_module_of_the_sop_is_left() -> None:
    flat = REPO / "plugins" / "toilless"
    left = [
        name
        for name in ("rds_storage.py", "rds_storage_chart.py", "rds_storage_report.py", "table_sizes.py")
        if (flat / name).exists()
    ]
    assert left == []
    assert not (flat / "hooks" / "rds_storage.py").exists()
    assert not (flat / "sensors" / "rds_storage.py").exists()


def test_no_task_stores_a_toilless_trigger_path() -> None:
    """Runs in flight keep working across the move: the verify sensor reschedules (no trigger row, nothing
    deferred by class path) and the approval defers to the Standard provider's HITL trigger, whose path did not move.
    A deferred or rescheduled task resumes from the DAG file, which imports the new module paths."""
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO / "dags" / "rds_storage_guard.py")).dags["rds_storage_guard"]
    sensor = dag.get_task("verify_expansion")
    assert sensor.mode == "reschedule"
    assert not getattr(sensor, "deferrable", False)
    approval = dag.get_task("request_approval")
    assert type(approval).__module__ == "toilless.operators.approval"  # not moved
