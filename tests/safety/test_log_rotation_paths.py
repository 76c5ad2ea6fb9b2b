"""log_rotation attacked through the file system: nothing outside the allowed roots changes, ever.

Issue 11, defects 1-3: a log-set root that is a symlink, a hard link to a file outside, a file name with a newline.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from toilless.sops.log_rotation import engine, naming
from toilless.sops.log_rotation.settings import LogSet, parse_log_sets

REPO = Path(__file__).resolve().parents[2]
NOW = datetime.now(UTC)
DATA = b"".join(f"2026-11-22T03:00:00Z INFO line {i} of a log\n".encode() for i in range(2000))


def state(files: Path) -> dict[str, tuple[int, int, int, str]]:
    """inode, size, link count and content hash of every file below ``files``: "nothing changed", checkable."""
    result = {}
    for entry in sorted(files.rglob("*")):
        if entry.is_file() and not entry.is_symlink():
            info = entry.stat()
            result[str(entry)] = (
                info.st_ino,
                info.st_size,
                info.st_nlink,
                hashlib.sha256(entry.read_bytes()).hexdigest(),
            )
    return result


def config(allowed: Path, root: Path, **overrides: Any) -> dict[str, Any]:
    spec = {"root": str(root), "globs": ["*.log"], "min_size": 1, "reopen": {"timeout_seconds": 0}, **overrides}
    return {"allowed_roots": [str(allowed)], "log_sets": {"web": spec}}


def log_set(allowed: Path, root: Path, **overrides: Any) -> LogSet:
    return parse_log_sets(config(allowed, root, **overrides))["web"]


def run_all(target: LogSet, state_dir: Path) -> dict[str, Any]:
    rotation = engine.rotate_log_set(target, state_dir=state_dir, now=NOW)
    retention = engine.apply_retention(target, state_dir=state_dir, now=NOW + timedelta(days=400))
    return {"rotation": rotation, "retention": retention}


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """An allowed root R and a directory outside it holding a victim log."""
    allowed = tmp_path / "R"
    outside = tmp_path / "outside" / "dir"
    allowed.mkdir()
    outside.mkdir(parents=True)
    (outside / "victim.log").write_bytes(DATA)
    return allowed, outside


@pytest.mark.parametrize("mode", ["rename", "copytruncate"])
def test_a_root_that_is_a_symlink_out_of_the_allowed_roots_touches_nothing(
    layout: tuple[Path, Path], tmp_path: Path, mode: str
) -> None:
    allowed, outside = layout
    (allowed / "linkdir").symlink_to(outside, target_is_directory=True)
    (allowed / "inside.log").write_bytes(DATA)
    before = state(tmp_path / "outside")
    result = run_all(log_set(allowed, allowed / "linkdir", mode=mode), tmp_path / "state")
    assert state(tmp_path / "outside") == before, "a file outside the allowed roots changed"
    assert result["rotation"]["rotated"] == []
    assert any("outside the allowed roots" in error for error in result["rotation"]["errors"])
    assert result["retention"]["deleted"] == []
    assert result["retention"]["errors"]


def test_a_symlinked_directory_inside_the_root_resolving_outside_is_refused(
    layout: tuple[Path, Path], tmp_path: Path
) -> None:
    allowed, outside = layout
    root = allowed / "app"
    root.mkdir()
    (root / "sub").symlink_to(outside, target_is_directory=True)
    before = state(tmp_path / "outside")
    result = run_all(log_set(allowed, root, globs=["sub/*.log"]), tmp_path / "state")
    assert state(tmp_path / "outside") == before
    assert result["rotation"]["rotated"] == []


@pytest.mark.parametrize("mode", ["copytruncate", "rename"])
def test_a_hard_link_to_a_file_outside_is_never_rotated(layout: tuple[Path, Path], tmp_path: Path, mode: str) -> None:
    allowed, outside = layout
    target = outside / "target.log"
    target.write_bytes(DATA)
    os.link(target, allowed / "hard.log")
    (allowed / "own.log").write_bytes(DATA)
    before = state(tmp_path / "outside")
    result = run_all(log_set(allowed, allowed, mode=mode), tmp_path / "state")
    assert state(tmp_path / "outside") == before
    assert target.read_bytes() == DATA
    skipped = {Path(item["path"]).name: item["reason"] for item in result["rotation"]["skipped"]}
    assert "hard links" in skipped["hard.log"]
    # The other file is rotated as usual.
    assert [Path(item["live"]).name for item in result["rotation"]["rotated"]] == ["own.log"]


def test_a_newline_in_a_file_name_is_skipped_and_never_stops_the_run(tmp_path: Path) -> None:
    root = tmp_path / "R"
    root.mkdir()
    (root / "a\nx.log").write_bytes(DATA)
    (root / "good.log").write_bytes(DATA)
    target = log_set(root, root)
    for _ in range(2):  # and every later run too
        result = run_all(target, tmp_path / "state")
        assert (root / "a\nx.log").read_bytes() == DATA
        skipped = {item["path"]: item["reason"] for item in result["rotation"]["skipped"]}
        assert "control characters" in skipped[str(root / "a\nx.log")]
    archives = [
        entry.name for entry in root.iterdir() if (parsed := naming.parse_rotated(entry.name)) and parsed.is_archive
    ]
    assert len(archives) == 1
    assert archives[0].startswith("good.log.")


def test_a_leftover_rotated_file_with_a_newline_in_its_name_is_finished(tmp_path: Path) -> None:
    """What a run of the old code left behind (it renamed, then crashed) must not crash every later run."""
    root = tmp_path / "R"
    root.mkdir()
    leftover = root / f"a\nx.log.{naming.stamp(NOW - timedelta(days=1))}.1"
    leftover.write_bytes(DATA)
    (root / "good.log").write_bytes(DATA)
    result = run_all(log_set(root, root), tmp_path / "state")
    assert result["rotation"]["errors"] == []
    assert not leftover.exists()
    assert {Path(item["source"]).name for item in result["rotation"]["compressed"]} >= {leftover.name}


def test_the_cli_reports_a_hostile_name_as_json_and_one_line(tmp_path: Path) -> None:
    root = tmp_path / "R"
    root.mkdir()
    (root / "a\nx.log").write_bytes(DATA)
    (root / "good.log").write_bytes(DATA)
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({**config(root, root), "state_dir": str(tmp_path / "state")}))
    done = subprocess.run(
        [sys.executable, "-m", "toilless.sops.log_rotation", "--config", str(config_file), "--no-measure"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)])},
        check=False,
    )
    assert "Traceback" not in done.stderr
    assert done.returncode == 0, done.stderr
    [entry] = json.loads(done.stdout)
    assert [Path(item["live"]).name for item in entry["rotation"]["rotated"]] == ["good.log"]
    assert entry["rotation"]["skipped"][0]["path"] == str(root / "a\nx.log")
    assert "skipped 'a\\nx.log'" in done.stderr.replace(str(root) + "/", "")
