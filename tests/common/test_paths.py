"""toilless.common.paths: the one check every file read passes (regular file, physically under an allowed root)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from toilless.common.paths import UnsafePathError, check_readable, open_checked, unreadable_reason


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("secret")
    (root / "app.log").write_text("ok")
    (root / "sub" / "kept.log").write_text("kept")
    (root / "inside-link").symlink_to(root / "sub" / "kept.log")
    (root / "outside-link").symlink_to(tmp_path / "outside" / "secret")
    (root / "dir-link").symlink_to(tmp_path / "outside")
    (root / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(root / "fifo")
    return root


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        pytest.param("app.log", None, id="regular-file"),
        pytest.param("inside-link", None, id="symlink-inside-the-root"),
        pytest.param("outside-link", "outside the allowed directories", id="symlink-out"),
        pytest.param("dir-link/secret", "outside the allowed directories", id="symlinked-directory-out"),
        pytest.param("../outside/secret", "outside the allowed directories", id="dot-dot"),
        pytest.param("dangling", "outside the allowed directories", id="dangling-symlink-out"),
        pytest.param("fifo", "not a regular file", id="fifo"),
        pytest.param("sub", "not a regular file", id="directory"),
        pytest.param("missing.log", "does not exist", id="missing"),
    ],
)
def test_unreadable_reason(tree: Path, name: str, reason: str | None) -> None:
    found = unreadable_reason(f"{tree}/{name}", [str(tree)])
    if reason is None:
        assert found is None
    else:
        assert found is not None
        assert reason in found


@pytest.mark.parametrize(
    ("path", "roots", "reason"),
    [
        pytest.param("relative.log", ["/var/log"], "not an absolute path", id="relative"),
        pytest.param("/var/log/a\nb", ["/var/log"], "control characters", id="newline"),
        pytest.param("/var/log/a.log", [], "no allowed directories", id="no-roots"),
    ],
)
def test_malformed_paths_are_refused(path: str, roots: list[str], reason: str) -> None:
    assert reason in (unreadable_reason(path, roots) or "")


def test_open_checked_reads_an_allowed_file_and_refuses_the_rest(tree: Path) -> None:
    with open_checked(tree / "inside-link", [str(tree)]) as handle:
        assert handle.read() == b"kept"
    assert check_readable(tree / "inside-link", [str(tree)]) == str(tree / "sub" / "kept.log")
    with pytest.raises(UnsafePathError, match="outside the allowed directories"):
        open_checked(tree / "outside-link", [str(tree)])
    with pytest.raises(UnsafePathError, match="not a regular file"):
        open_checked(tree / "fifo", [str(tree)])
