"""Path safety: globs stay under their root, symlinks never lead out, our own files are never live files."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from toilless.sops.log_rotation import naming, paths
from toilless.sops.log_rotation.planning import assign_extra_paths
from toilless.sops.log_rotation.settings import parse_log_sets


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param("../etc/passwd", id="dotdot-relative"),
        pytest.param("logs/../../etc/*", id="dotdot-inside"),
        pytest.param("/etc/passwd", id="absolute-outside"),
        pytest.param("/var/log/apps-evil/x.log", id="sibling-prefix"),
        pytest.param("", id="empty"),
        pytest.param("a\x00b", id="nul-byte"),
    ],
)
def test_check_glob_rejects_escapes(pattern: str) -> None:
    with pytest.raises(paths.PathEscapeError):
        paths.check_glob(pattern, "/var/log/apps")


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        pytest.param("*.log", "/var/log/apps/*.log", id="relative"),
        pytest.param("/var/log/apps/web/*.log", "/var/log/apps/web/*.log", id="absolute-inside"),
        pytest.param("./web//app.log", "/var/log/apps/web/app.log", id="normalised"),
    ],
)
def test_check_glob_accepts_paths_under_root(pattern: str, expected: str) -> None:
    assert paths.check_glob(pattern, "/var/log/apps") == expected


def test_find_live_files_skips_symlinks_and_escaping_directories(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    (root / "web").mkdir(parents=True)
    (root / "web" / "app.log").write_text("line\n")
    (root / "web" / "app.log.20261122T033000Z.1.zst").write_bytes(b"archive")
    (root / "web" / ".app.log.20261122T033000Z.2.zst.toilless-tmp").write_bytes(b"partial")
    (root / "passwd.log").symlink_to("/etc/passwd")
    (root / "etc").symlink_to("/etc", target_is_directory=True)
    live, skipped = paths.find_live_files(str(root), ["web/*", "*.log", "etc/*"])
    assert live == [str(root / "web" / "app.log")]
    reasons = {item.path: item.reason for item in skipped}
    assert "symlink" in reasons[str(root / "passwd.log")]
    assert any("outside the root" in reason for path, reason in reasons.items() if path.startswith(str(root / "etc")))


def test_extra_param_paths_outside_roots_are_rejected(tmp_path: Path) -> None:
    config = {
        "allowed_roots": [str(tmp_path / "logs")],
        "log_sets": {"web": {"root": str(tmp_path / "logs" / "web"), "globs": ["*.log"]}},
    }
    chosen = list(parse_log_sets(config).values())
    roots = [str(tmp_path / "logs")]
    with pytest.raises(paths.PathEscapeError, match="outside the allowed roots"):
        assign_extra_paths(chosen, ["/etc/passwd"], roots)
    with pytest.raises(paths.PathEscapeError, match=r"'\.\.'"):
        assign_extra_paths(chosen, [str(tmp_path / "logs" / "web" / ".." / ".." / "x")], roots)
    with pytest.raises(paths.PathEscapeError, match="under no chosen log set"):
        assign_extra_paths(chosen, [str(tmp_path / "logs" / "other" / "x.log")], roots)
    assigned = assign_extra_paths(chosen, [str(tmp_path / "logs" / "web" / "extra-*.log")], roots)
    assert assigned == {"web": [str(tmp_path / "logs" / "web" / "extra-*.log")]}


@pytest.mark.parametrize(
    ("name", "archive", "pending", "tmp"),
    [
        pytest.param("app.log.20261122T033000Z.1.zst", True, False, False, id="zstd-archive"),
        pytest.param("app.log.20261122T033000Z.12.gz", True, False, False, id="gzip-archive"),
        pytest.param("app.log.20261122T033000Z.1", False, True, False, id="pending"),
        pytest.param(".app.log.20261122T033000Z.1.zst.toilless-tmp", False, False, True, id="tmp"),
        pytest.param("app.log.1.gz", False, False, False, id="logrotate-name-not-ours"),
        pytest.param("app.log", False, False, False, id="live"),
        pytest.param("app.log.20261122T033000Z.1.zst.bak", False, False, False, id="suffix-not-ours"),
    ],
)
def test_naming_recognises_only_our_files(name: str, archive: bool, pending: bool, tmp: bool) -> None:
    parsed = naming.parse_rotated(name)
    assert (parsed is not None and parsed.is_archive) == archive
    assert (parsed is not None and not parsed.is_archive) == pending
    assert naming.is_tmp(name) == tmp
    # A temporary never parses as an archive: a partial file can never look complete.
    if tmp:
        assert naming.parse_rotated(name) is None


def test_new_rotated_name_avoids_taken_names() -> None:
    from datetime import UTC, datetime

    moment = datetime(2026, 11, 22, 3, 30, tzinfo=UTC)
    taken = {"app.log.20261122T033000Z.1.zst", ".app.log.20261122T033000Z.2.gz.toilless-tmp"}
    assert naming.new_rotated_name("app.log", moment, taken).pending_name == "app.log.20261122T033000Z.3"
    assert os.sep not in naming.tmp_name("x")


@pytest.mark.parametrize(
    "stamp",
    [
        pytest.param("20261122T043000Z", id="ordinary"),
        pytest.param("20240229T235959Z", id="leap-day"),
        pytest.param("19991231T000000Z", id="last-century"),
    ],
)
def test_the_rotation_time_is_read_from_the_name_as_strptime_reads_it(stamp: str) -> None:
    parsed = naming.parse_rotated(f"app.log.{stamp}.3.zst")
    assert parsed is not None
    assert parsed.rotated_at == datetime.strptime(stamp, naming.STAMP_FORMAT).replace(tzinfo=UTC)


@pytest.mark.parametrize("stamp", ["20261322T043000Z", "20250229T000000Z", "20261122T246000Z", "20261122T235960Z"])
def test_an_impossible_rotation_time_is_refused_as_strptime_refuses_it(stamp: str) -> None:
    parsed = naming.parse_rotated(f"app.log.{stamp}.1")
    assert parsed is not None
    with pytest.raises(ValueError):
        datetime.strptime(stamp, naming.STAMP_FORMAT)
    with pytest.raises(ValueError):
        _ = parsed.rotated_at


def test_a_rotation_run_does_not_pay_for_strptime(tmp_path: Path) -> None:
    """datetime.strptime's first call imports _strptime, calendar and locale (~10 ms of a CLI run's start)."""
    code = (
        "import sys; from toilless.sops.log_rotation import naming; "
        "assert naming.parse_rotated('app.log.20261122T043000Z.1.zst').rotated_at.year == 2026; "
        "print('_strptime' in sys.modules)"
    )
    plugins = str(Path(naming.__file__).resolve().parents[3])
    env = {**os.environ, "PYTHONPATH": plugins}
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert shown.stdout.strip() == "False"
