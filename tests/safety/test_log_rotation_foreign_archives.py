"""Other tools' archives are compliance data: log_rotation never empties, moves or deletes them (issue 11 #5).

A broad glob (``app.log*``, ``*``) matches them; whatever the glob says, a file named the way logrotate, Python's
logging handlers or journald name rotated files is not a live log.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from toilless.sops.log_rotation import engine, naming
from toilless.sops.log_rotation.settings import parse_log_sets

NOW = datetime.now(UTC)
DATA = b"".join(f"2026-11-22T03:00:00Z INFO line {i}\n".encode() for i in range(3000))

FOREIGN = [
    # logrotate: numbered, compressed, dateext, dateext compressed, hourly, custom dateformat, "extension .log"
    pytest.param("app.log.1", id="logrotate-numbered"),
    pytest.param("app.log.12", id="logrotate-numbered-12"),
    pytest.param("app.log.1.gz", id="logrotate-numbered-gz"),
    pytest.param("app.log.2.bz2", id="logrotate-numbered-bz2"),
    pytest.param("app.log.3.xz", id="logrotate-numbered-xz"),
    pytest.param("app.log.1.zst", id="logrotate-numbered-zst"),
    pytest.param("app.log-20260101", id="logrotate-dateext"),
    pytest.param("app.log-20260101.gz", id="logrotate-dateext-gz"),
    pytest.param("app.log-2026010110", id="logrotate-dateext-hourly"),
    pytest.param("app.log-20260101-1767225600", id="logrotate-dateformat-epoch"),
    pytest.param("app.log-2026-01-01", id="logrotate-dateformat-dashes"),
    pytest.param("app.log_2026.01.01", id="logrotate-dateformat-dots"),
    pytest.param("app.log.1767225600", id="logrotate-dateformat-epoch-only"),
    pytest.param("app-20260101.log", id="logrotate-dateext-extension"),
    pytest.param("app.1.log", id="logrotate-extension-numbered"),
    pytest.param("app.log.old", id="olddir-old"),
    pytest.param("app.log~", id="backup-tilde"),
    # Python logging: RotatingFileHandler and TimedRotatingFileHandler (when="D", "M"/"H", "S")
    pytest.param("app.log.2", id="python-rotating"),
    pytest.param("app.log.2026-01-01", id="python-timed-daily"),
    pytest.param("app.log.2026-01-01_10-00", id="python-timed-minutes"),
    pytest.param("app.log.2026-01-01_10-00-00", id="python-timed-seconds"),
    pytest.param("app.log.2026-01-01_10", id="python-timed-hourly"),
    # journald: archived and dirty journals (and the live journal is journald's own)
    pytest.param("app.log@0005f3e1c2b2a8c1-7d2c9e7b8a6f5e4d.journal~", id="journald-dirty"),
    pytest.param(
        "app.log@6a1b2c3d4e5f60718293a4b5c6d7e8f9-0000000000000001-0005f3e1c2b2a8c1.journal", id="journald-archived"
    ),
    pytest.param("app.log.journal", id="journald-live"),
]


def digest(path: Path) -> tuple[int, int, str]:
    info = path.stat()
    return info.st_ino, info.st_size, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("mode", ["rename", "copytruncate"])
@pytest.mark.parametrize("name", FOREIGN)
def test_another_tools_archive_is_never_a_live_log(tmp_path: Path, name: str, mode: str) -> None:
    root = tmp_path / "R"
    root.mkdir()
    (root / "app.log").write_bytes(DATA)
    foreign = root / name
    foreign.write_bytes(b"archived by someone else\n" * 100)
    before = digest(foreign)
    spec = {"root": str(root), "globs": ["app*"], "min_size": 1, "mode": mode, "reopen": {"timeout_seconds": 0}}
    spec["retention"] = {"max_archives": 0, "max_age_days": 0}
    target = parse_log_sets({"allowed_roots": [str(root)], "log_sets": {"app": spec}})["app"]
    rotation = engine.rotate_log_set(target, state_dir=tmp_path / "state", now=NOW)
    retention = engine.apply_retention(target, state_dir=tmp_path / "state", now=NOW + timedelta(days=1))
    assert digest(foreign) == before
    assert [Path(item["live"]).name for item in rotation["rotated"]] == ["app.log"]
    reasons = {Path(item["path"]).name: item["reason"] for item in rotation["skipped"]}
    assert "never treated as a live log" in reasons[name]
    # Retention deleted our own archive (max_archives 0) and nothing else.
    assert retention["deleted"]
    assert all(naming.parse_rotated(Path(item["path"]).name) for item in retention["deleted"])
    assert foreign.exists()


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("app.log", id="plain"),
        pytest.param("access.log", id="access"),
        pytest.param("service.json.log", id="json"),
        pytest.param("web-01.log", id="host-suffix"),
        pytest.param("syslog", id="no-extension"),
        pytest.param("server-8080.log", id="port"),
    ],
)
def test_ordinary_live_log_names_are_still_rotated(name: str) -> None:
    assert naming.foreign_archive_reason(name) is None
