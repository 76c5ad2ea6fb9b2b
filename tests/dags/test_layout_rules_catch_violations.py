"""The layout rules themselves (house_rules.py), on small fixture trees: a compliant tree passes, each break is caught."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dags.house_rules import (
    MAX_MODULE_LINES,
    airflow_imports,
    awaited_by,
    flat_module_findings,
    form_marks_required,
    long_module_findings,
    name_findings,
    package_findings,
    param_form_violations,
    pure_module_findings,
)

SOP = "disk_guard"


def write(root: Path, relative: str, text: str = "") -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A compliant miniature repository with one SOP, ``disk_guard``."""
    root = tmp_path / "repo"
    write(root, "plugins/toilless/__init__.py", '"""Toilless."""\n')
    write(root, "plugins/toilless/common/__init__.py")
    write(root, "plugins/toilless/common/config.py", "def load_config(name):\n    return {}\n")
    write(root, "plugins/toilless/sops/__init__.py")
    write(root, f"plugins/toilless/sops/{SOP}/__init__.py", '"""Decides when a disk is too full."""\n')
    write(root, f"plugins/toilless/sops/{SOP}/decide.py", "def too_full(used, limit):\n    return used > limit\n")
    write(
        root,
        f"plugins/toilless/sops/{SOP}/steps.py",
        "from airflow.sdk import Variable\n\nfrom toilless.common.config import load_config\n\n\n"
        f"def measure(context):\n    return load_config({SOP!r}), load_config('toilless')\n",
    )
    write(root, f"dags/{SOP}.py", f'"""{SOP}"""\n')
    write(root, f"include/config/{SOP}.yaml", "limit: 90\n")
    write(root, f"tests/sops/{SOP}/__init__.py")
    return root


def all_findings(root: Path) -> list[str]:
    found = [
        *pure_module_findings(root),
        *package_findings(root),
        *long_module_findings(root),
        *flat_module_findings(root),
        *name_findings(root, SOP),
    ]
    return [str(finding) for finding in found]


def test_a_compliant_tree_passes_every_layout_rule(tree: Path) -> None:
    assert all_findings(tree) == []


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("import airflow\n", id="top-level-import"),
        pytest.param("from airflow.sdk import Variable\n", id="from-import"),
        pytest.param("def read():\n    from airflow.sdk import Variable\n    return Variable\n", id="inside-function"),
        pytest.param(
            "import importlib\n\ndef read():\n    return importlib.import_module('airflow.sdk')\n", id="import-module"
        ),
    ],
)
def test_airflow_import_at_any_level_in_a_pure_module_is_caught(tree: Path, source: str) -> None:
    path = write(tree, f"plugins/toilless/sops/{SOP}/decide.py", source)
    assert airflow_imports(path)
    found = "\n".join(str(finding) for finding in pure_module_findings(tree))
    assert f"plugins/toilless/sops/{SOP}/decide.py: pure module imports Airflow" in found


def test_pure_module_importing_airflow_through_another_module_is_caught_by_the_blocked_import(tree: Path) -> None:
    # No Airflow import in decide.py's own text: only importing it with Airflow blocked shows the dependency.
    write(tree, f"plugins/toilless/sops/{SOP}/decide.py", f"from toilless.sops.{SOP} import steps\n")
    found = [str(finding) for finding in pure_module_findings(tree)]
    assert len(found) == 1
    assert f"plugins/toilless/sops/{SOP}/decide.py: does not import with Airflow blocked" in found[0]
    assert "Airflow is blocked here" in found[0]


def test_pure_module_that_fails_to_import_for_another_reason_is_caught(tree: Path) -> None:
    write(tree, f"plugins/toilless/sops/{SOP}/thresholds.py", "raise RuntimeError('parse-time failure')\n")
    found = "\n".join(str(finding) for finding in pure_module_findings(tree))
    assert "thresholds.py: does not import with Airflow blocked: RuntimeError: parse-time failure" in found


def test_steps_module_may_import_airflow(tree: Path) -> None:
    assert airflow_imports(tree / f"plugins/toilless/sops/{SOP}/steps.py")
    assert pure_module_findings(tree) == []


def test_package_without_steps_or_dag_is_caught(tree: Path) -> None:
    (tree / f"plugins/toilless/sops/{SOP}/steps.py").unlink()
    write(tree, "plugins/toilless/sops/orphan/__init__.py")
    write(tree, "plugins/toilless/sops/orphan/steps.py")
    found = "\n".join(str(finding) for finding in package_findings(tree))
    assert f"plugins/toilless/sops/{SOP}: no steps.py" in found
    assert "plugins/toilless/sops/orphan: no dags/orphan.py" in found


def test_long_module_is_caught_unless_its_docstring_says_why(tree: Path) -> None:
    body = "x = 1\n" * (MAX_MODULE_LINES + 1)
    write(tree, f"plugins/toilless/sops/{SOP}/decide.py", '"""Decide."""\n' + body)
    write(tree, "plugins/toilless/common/big.py", '"""Big.\n\nOver 400 lines because\n"""\n' + body)
    write(
        tree,
        "plugins/toilless/common/table.py",
        '"""The table of every AWS error code.\n\nOver 400 lines because it is one table that reads best whole.\n"""\n'
        + body,
    )
    found = "\n".join(str(finding) for finding in long_module_findings(tree))
    assert f"plugins/toilless/sops/{SOP}/decide.py: {MAX_MODULE_LINES + 2} lines, over {MAX_MODULE_LINES}" in found
    # The marker without a reason is not a reason.
    assert "plugins/toilless/common/big.py" in found
    assert "table.py" not in found


def test_exactly_400_lines_pass(tree: Path) -> None:
    write(tree, f"plugins/toilless/sops/{SOP}/decide.py", "x = 1\n" * MAX_MODULE_LINES)
    assert long_module_findings(tree) == []


def test_flat_module_in_toilless_is_caught(tree: Path) -> None:
    write(tree, "plugins/toilless/disk_guard_report.py", "")
    found = [str(finding) for finding in flat_module_findings(tree)]
    assert found == [
        "plugins/toilless/disk_guard_report.py: flat module: a SOP's code goes to sops/<dag_id>/, "
        "shared code to common/"
    ]


def test_dag_without_package_tests_or_config_is_caught(tree: Path) -> None:
    write(tree, "dags/cache_flush.py", "from toilless.common.config import load_config\n\nload_config('cache_flush')\n")
    found = "\n".join(str(finding) for finding in name_findings(tree, "cache_flush"))
    assert "cache_flush: no package plugins/toilless/sops/cache_flush/" in found
    assert "cache_flush: no tests/sops/cache_flush/" in found
    assert "include/config/cache_flush.yaml does not exist" in found


def test_sop_reading_a_config_under_another_name_is_caught(tree: Path) -> None:
    write(
        tree, f"plugins/toilless/sops/{SOP}/steps.py", "def settings(load_config):\n    return load_config('disks')\n"
    )
    found = [str(finding) for finding in name_findings(tree, SOP)]
    assert found == [f"{SOP}: reads config 'disks': a SOP's config is named after its dag_id"]


def test_sop_that_reads_no_config_needs_no_yaml(tree: Path) -> None:
    write(tree, f"plugins/toilless/sops/{SOP}/steps.py", "def measure(context):\n    return {}\n")
    (tree / f"include/config/{SOP}.yaml").unlink()
    assert name_findings(tree, SOP) == []


# -- (d) the trigger form: what Airflow 3.3's UI marks required ---------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "required"),
    [
        pytest.param({"type": "boolean"}, True, id="plain-type"),
        pytest.param({"type": "array"}, True, id="plain-array"),
        pytest.param({"type": ["array"]}, True, id="list-without-null"),
        pytest.param({"type": ["null", "array"]}, False, id="list-with-null"),
        pytest.param({"type": ["integer", "null"]}, False, id="null-anywhere-in-list"),
        pytest.param({}, False, id="no-type"),
        pytest.param({"type": "string", "const": "fixed"}, False, id="const-is-hidden"),
    ],
)
def test_form_marks_required_like_the_airflow_ui(schema: dict, required: bool) -> None:
    assert form_marks_required(schema) is required


def test_param_with_a_default_that_the_form_requires_is_caught() -> None:
    from airflow.sdk import DAG, Param

    dag = DAG(
        dag_id="form_check",
        schedule=None,
        params={
            "instance_ids": Param([], type="array", title="Instance ids", description="Which."),
            "dry_run": Param(False, type="boolean", title="Dry run", description="Change nothing."),
            "tag_filter": Param({}, type=["null", "object"], title="Tag filter", description="Which tags."),
            "threshold": Param(None, type=["null", "integer"], title="Threshold", description="Empty: configured."),
            # No default: required on purpose (a run cannot start without it).
            "ticket": Param(type="string", title="Ticket", description="The change ticket."),
        },
    )
    found = param_form_violations(dag.params)
    assert [line.split(":")[0] for line in found] == ["param instance_ids", "param dry_run"]


def test_shared_dry_run_param_is_optional_in_the_form() -> None:
    from airflow.sdk import DAG

    from toilless.common.params import alert_param, dry_run_param

    dag = DAG(dag_id="shared_params", schedule=None, params={"dry_run": dry_run_param(), "alert": alert_param()})
    assert param_form_violations(dag.params) == []


# -- the list of what in-flight moves fix --------------------------------------------------------------------------


def test_awaiting_merge_matches_dag_ids_their_packages_and_listed_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.dags.house_rules as rules

    monkeypatch.setattr(
        rules, "AWAITING_MERGE", {"rds_storage_guard": rules.Awaiting("a branch", ("table_sizes.py", "intake/"))}
    )
    assert awaited_by("rds_storage_guard") == "rds_storage_guard"
    assert awaited_by("plugins/toilless/sops/rds_storage_guard/plan.py") == "rds_storage_guard"
    assert awaited_by("plugins/toilless/table_sizes.py") == "rds_storage_guard"
    assert awaited_by("plugins/toilless/intake/service.py") == "rds_storage_guard"
    assert awaited_by("plugins/toilless/cost_review_extra.py") is None
    assert awaited_by("new_sop") is None
