"""Every DAG in dags/ imports cleanly and obeys the house rules (see house_rules.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dags.house_rules import REPO, dag_violations, parse_in_fresh_process, parse_violations, source_violations

DAG_FILES = sorted(path for path in (REPO / "dags").glob("*.py") if not path.name.startswith("_"))


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_there_are_dags() -> None:
    assert DAG_FILES, "dags/ holds no DAG files"


def test_every_dag_file_imports_without_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert {Path(dag.fileloc).stem for dag in dagbag.dags.values()} == {path.stem for path in DAG_FILES}


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda path: path.stem)
def test_dag_obeys_house_rules(dagbag, path: Path) -> None:
    dag = dagbag.dags.get(path.stem)
    assert dag is not None, f"{path.name} does not define DAG {path.stem!r}"
    assert dag_violations(dag) == []


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda path: path.stem)
def test_dag_file_obeys_source_and_parse_rules(path: Path) -> None:
    report = parse_in_fresh_process(path)
    assert parse_violations(report) == []
    assert source_violations(path, report["dag_ids"]) == []
