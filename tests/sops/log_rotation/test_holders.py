"""A rotated file is compressed only once no process holds it open: a write lease proves that in one system call,
and /proc is searched for the pids only when the lease is refused."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from toilless.sops.log_rotation import engine, rotate
from toilless.sops.log_rotation.settings import parse_log_sets

NOW = datetime(2026, 11, 22, 4, 30, tzinfo=UTC)

_HOLD = """
import mmap, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
if sys.argv[2] == "mmap":
    mapped = mmap.mmap(fd, 0)
    os.close(fd)
print("ready", flush=True)
time.sleep(60)
"""


@pytest.fixture
def holder() -> Iterator[object]:
    started: list[subprocess.Popen[str]] = []

    def hold(path: Path, how: str = "fd") -> int:
        process = subprocess.Popen([sys.executable, "-c", _HOLD, str(path), how], stdout=subprocess.PIPE, text=True)
        started.append(process)
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        return process.pid

    yield hold
    for process in started:
        process.kill()
        process.wait()


@pytest.fixture
def no_proc_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.scandir

    def scandir(path: object = ".") -> object:
        assert path != "/proc", "searched /proc although the lease proved nobody holds the file"
        return real(path)  # type: ignore[call-overload]

    monkeypatch.setattr(os, "scandir", scandir)


def test_a_file_nobody_holds_is_proven_free_without_searching_proc(tmp_path: Path, no_proc_scan: None) -> None:
    path = tmp_path / "app.log.20261122T043000Z.1"
    path.write_bytes(b"line\n")
    assert rotate.nobody_holds(str(path))
    assert rotate.held_open([str(path)]) == {}


@pytest.mark.parametrize("how", [pytest.param("fd", id="open-descriptor"), pytest.param("mmap", id="memory-map")])
def test_a_file_another_process_holds_is_not_free(tmp_path: Path, holder: object, how: str) -> None:
    path = tmp_path / "app.log.20261122T043000Z.1"
    path.write_bytes(b"line\n" * 1000)
    pid = holder(path, how)  # type: ignore[operator]
    assert not rotate.nobody_holds(str(path))
    if how == "fd":  # /proc/<pid>/fd names descriptors, not maps: the pid is found through an open descriptor
        assert rotate.held_open([str(path)]) == {str(path): [pid]}


def test_the_lease_is_released_at_once(tmp_path: Path) -> None:
    """Another process opening the file right after the check must not wait for a lease break."""
    path = tmp_path / "app.log"
    path.write_bytes(b"line\n")
    assert rotate.nobody_holds(str(path))
    opened = subprocess.run([sys.executable, "-c", f"open({str(path)!r}, 'a').write('more\\n')"], timeout=5, check=True)
    assert opened.returncode == 0
    assert path.read_bytes() == b"line\nmore\n"


def test_a_rotated_file_the_writer_still_holds_stays_pending_with_its_pid(tmp_path: Path, holder: object) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    live = root / "app.log"
    live.write_bytes(b"line\n" * 1000)
    pid = holder(live)  # type: ignore[operator]  # holds the inode, which the rotation renames
    log_set = parse_log_sets(
        {
            "allowed_roots": [str(root)],
            "log_sets": {
                "web": {"root": str(root), "globs": ["*.log"], "min_size": 1, "reopen": {"timeout_seconds": 0}}
            },
        }
    )["web"]
    result = engine.rotate_log_set(log_set, state_dir=tmp_path / "state", now=NOW)
    [pending] = result["pending"]
    assert pending["path"] == str(root / "app.log.20261122T043000Z.1")
    assert f"still held open by pid [{pid}]" in pending["reason"]
    assert result["compressed"] == []
