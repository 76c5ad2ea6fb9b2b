"""The SOP scaffold: it refuses bad and taken names, writes ruff-clean files, and `make sop` calls it.

The acceptance test (a SOP scaffolded into a copy of this repository passes the house rules and its own generated
tests) is in test_scaffold_acceptance.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from toilless.scaffold import FILES, MAX_DAG_ID_LENGTH, ScaffoldError, Sop, check_dag_id, scaffold
from toilless.scaffold.__main__ import main

REPO = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).parent / "ruff"


def files_under(root: Path) -> list[str]:
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())


@pytest.mark.parametrize(
    "dag_id",
    [
        pytest.param("Disk_guard", id="upper-case"),
        pytest.param("disk-guard", id="dash"),
        pytest.param("1disk", id="leading-digit"),
        pytest.param("disk__guard", id="double-underscore"),
        pytest.param("disk_guard_", id="trailing-underscore"),
        pytest.param("_disk", id="leading-underscore"),
        pytest.param("disk guard", id="space"),
        pytest.param("", id="empty"),
        pytest.param("d" * (MAX_DAG_ID_LENGTH + 1), id="too-long"),
        pytest.param("class", id="python-keyword"),
        pytest.param("toilless", id="reserved-shared-config"),
        pytest.param("../evil", id="path"),
    ],
)
def test_invalid_dag_id_is_refused_and_nothing_is_written(tmp_path: Path, dag_id: str) -> None:
    with pytest.raises(ScaffoldError, match="invalid dag_id"):
        scaffold(Sop(dag_id), tmp_path)
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("target", sorted(FILES.values()), ids=lambda target: target.split("/")[0])
def test_existing_dag_id_is_refused_whichever_file_exists(tmp_path: Path, target: str) -> None:
    taken = tmp_path / target.format(dag_id="disk_guard")
    taken.parent.mkdir(parents=True)
    taken.write_text("mine\n", encoding="utf-8")
    with pytest.raises(ScaffoldError, match="already exists"):
        scaffold(Sop("disk_guard"), tmp_path)
    assert files_under(tmp_path) == [taken.relative_to(tmp_path).as_posix()]
    assert taken.read_text(encoding="utf-8") == "mine\n"


def test_the_real_repository_refuses_its_own_sops() -> None:
    with pytest.raises(ScaffoldError, match=r"already exists: .*dags/log_rotation\.py"):
        check_dag_id("log_rotation", REPO)


@pytest.mark.parametrize(
    ("owner", "channel"),
    [pytest.param("airflow", "non_urgent", id="default-owner"), pytest.param("sre", "#ops", id="channel")],
)
def test_owner_and_channel_are_checked(tmp_path: Path, owner: str, channel: str) -> None:
    with pytest.raises(ScaffoldError):
        scaffold(Sop("disk_guard", owner=owner, channel=channel), tmp_path)
    assert files_under(tmp_path) == []


def test_scaffold_writes_every_file_named_after_the_dag_id(tmp_path: Path) -> None:
    written = scaffold(Sop("disk_guard", owner="sre-storage", channel="ops"), tmp_path)
    assert sorted(path.relative_to(tmp_path).as_posix() for path in written) == sorted(
        [
            "plugins/toilless/sops/__init__.py",
            "tests/sops/__init__.py",
            *(target.format(dag_id="disk_guard") for target in FILES.values()),
        ]
    )
    dag_text = (tmp_path / "dags/disk_guard.py").read_text(encoding="utf-8")
    for section in ("## When it runs", "## Steps", "## Who is told", "## Safety"):
        assert section in dag_text
    assert 'owner="sre-storage"' in dag_text
    assert "from toilless.sops.disk_guard import steps" in dag_text
    assert "report_channel: ops" in (tmp_path / "include/config/disk_guard.yaml").read_text(encoding="utf-8")
    assert "class DiskGuardService(Service)" in (tmp_path / "sandbox/services/disk_guard.py").read_text(
        encoding="utf-8"
    )


def test_shared_package_markers_are_never_overwritten(tmp_path: Path) -> None:
    marker = tmp_path / "plugins/toilless/sops/__init__.py"
    marker.parent.mkdir(parents=True)
    marker.write_text('"""The SOP packages."""\n', encoding="utf-8")
    written = scaffold(Sop("disk_guard"), tmp_path)
    assert marker not in written
    assert marker.read_text(encoding="utf-8") == '"""The SOP packages."""\n'


def test_generated_files_are_ruff_clean_even_for_the_longest_name(tmp_path: Path) -> None:
    dag_id = "a" * 20 + "_" + "b" * (MAX_DAG_ID_LENGTH - 21)
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    scaffold(Sop(dag_id), tmp_path)
    check = subprocess.run([str(RUFF), "check", "."], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout
    form = subprocess.run(
        [str(RUFF), "format", "--check", "."], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert form.returncode == 0, form.stdout


def test_cli_writes_and_prints_the_manual_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["disk_guard", "--repo", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "dags/disk_guard.py" in out
    assert "Left for you:" in out
    assert "README.md" in out
    assert "include/alert_routes.yaml" in out
    assert (tmp_path / "plugins/toilless/sops/disk_guard/steps.py").is_file()


def test_cli_refuses_with_exit_code_2_and_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["Disk-Guard", "--repo", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("scaffold: invalid dag_id 'Disk-Guard'")
    assert len(captured.err.strip().splitlines()) == 1
    assert files_under(tmp_path) == []


def test_make_sop_calls_the_scaffold_and_needs_a_name() -> None:
    dry = subprocess.run(
        ["make", "-n", "sop", "NAME=disk_guard"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert dry.returncode == 0, dry.stderr
    assert "-m toilless.scaffold disk_guard" in dry.stdout
    missing = subprocess.run(["make", "-n", "sop"], cwd=REPO, capture_output=True, text=True, check=False)
    assert missing.returncode != 0
    assert "make sop NAME=<dag_id>" in missing.stderr
