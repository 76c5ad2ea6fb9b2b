"""The command line engine (``python -m toilless.sops.log_rotation``) leaves without the interpreter's teardown:
its report and its exit code still come out whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import zstandard

REPO = Path(__file__).resolve().parents[3]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)])}


def config_file(tmp_path: Path, names: list[str]) -> Path:
    root = tmp_path / "logs"
    root.mkdir()
    for number, name in enumerate(names):
        (root / name).write_bytes(f"line {number}\n".encode() * 50_000)
    spec = {"root": str(root), "globs": ["*.log"], "min_size": 1, "reopen": {"timeout_seconds": 0}}
    config = {"allowed_roots": [str(root)], "state_dir": str(tmp_path / "state"), "log_sets": {"app": spec}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def test_the_report_and_exit_code_come_out_whole(tmp_path: Path) -> None:
    # 300 files: a report far larger than a pipe's buffer, all of it written before the process leaves.
    names = [f"app{number:03d}.log" for number in range(300)]
    config = config_file(tmp_path, names)
    done = subprocess.run(
        [sys.executable, "-m", "toilless.sops.log_rotation", "--config", str(config), "--no-measure"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout) > 100_000
    [entry] = json.loads(done.stdout)
    assert len(entry["rotation"]["compressed"]) == len(names)
    sample = Path(entry["rotation"]["compressed"][0]["archive"])
    assert zstandard.ZstdDecompressor().decompressobj().decompress(sample.read_bytes()) == b"line 0\n" * 50_000


def test_an_error_still_exits_non_zero_with_its_lines_on_stderr(tmp_path: Path) -> None:
    config = config_file(tmp_path, ["app.log"])
    spec = json.loads(config.read_text())
    spec["log_sets"]["app"]["archive_owner"] = "no-such-user-here"
    config.write_text(json.dumps(spec), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "toilless.sops.log_rotation", "--config", str(config), "--no-measure"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "no such user or group" in done.stderr
    assert "Traceback" not in done.stderr
    [entry] = json.loads(done.stdout)
    assert entry["rotation"]["errors"]
