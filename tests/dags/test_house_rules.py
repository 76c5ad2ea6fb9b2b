"""Every DAG in dags/ imports cleanly and obeys the house rules, and the tree obeys the layout rules (house_rules.py).

Layout and Param-form violations of parts still being moved (issue 13) are let through only when listed in
house_rules.AWAITING_MERGE, and an entry there that no longer breaks any rule fails the last test here: the list only
shrinks, and is empty once every move is merged.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.dags.house_rules import (
    AWAITING_MERGE,
    REPO,
    Finding,
    awaited_by,
    dag_ids,
    dag_violations,
    flat_module_findings,
    long_module_findings,
    name_findings,
    package_findings,
    param_form_violations,
    parse_in_fresh_process,
    parse_violations,
    pure_module_findings,
    source_violations,
)

DAG_FILES = sorted(path for path in (REPO / "dags").glob("*.py") if not path.name.startswith("_"))

LAYOUT_RULES: dict[str, Callable[[Path], list[Finding]]] = {
    "pure_modules_import_without_airflow": pure_module_findings,
    "sop_packages_have_steps_and_a_dag": package_findings,
    "modules_within_400_lines_or_say_why": long_module_findings,
    "no_flat_modules_in_toilless": flat_module_findings,
    "dag_id_names_package_config_and_tests": lambda root: [
        finding for dag_id in dag_ids(root) for finding in name_findings(root, dag_id)
    ],
}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


@pytest.fixture(scope="module")
def layout_findings() -> dict[str, list[Finding]]:
    return {name: rule(REPO) for name, rule in LAYOUT_RULES.items()}


@pytest.fixture(scope="module")
def param_findings(dagbag) -> list[Finding]:
    return [
        Finding(dag.dag_id, problem) for dag in dagbag.dags.values() for problem in param_form_violations(dag.params)
    ]


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


@pytest.mark.parametrize("rule", sorted(LAYOUT_RULES))
def test_tree_obeys_layout_rule(layout_findings: dict[str, list[Finding]], rule: str) -> None:
    unexpected = [str(finding) for finding in layout_findings[rule] if awaited_by(finding.subject) is None]
    assert unexpected == []


def test_every_param_with_a_default_is_optional_in_the_trigger_form(param_findings: list[Finding]) -> None:
    unexpected = [str(finding) for finding in param_findings if awaited_by(finding.subject) is None]
    assert unexpected == []


def test_awaiting_merge_lists_only_what_still_breaks_a_rule(
    layout_findings: dict[str, list[Finding]], param_findings: list[Finding]
) -> None:
    findings = [*param_findings, *(finding for found in layout_findings.values() for finding in found)]
    still_awaited = {awaited_by(finding.subject) for finding in findings}
    done = sorted(set(AWAITING_MERGE) - still_awaited)
    assert done == [], f"these now obey every rule: remove them from house_rules.AWAITING_MERGE: {done}"
