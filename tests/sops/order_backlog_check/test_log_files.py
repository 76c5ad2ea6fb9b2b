"""The processor's log files: rotated siblings newest first, runs spanning a rotation, allowed roots."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import pytest
import zstandard

from sandbox.order_backlog_check_data import write_log
from toilless.sops.order_backlog_check.log_files import (
    LogAccessError,
    read_latest_run,
    resolve_log_path,
    rotated_files,
)
from toilless.sops.order_backlog_check.log_parsing import (
    summarize_run,
)


# -- rotated files ---------------------------------------------------------------------------------------------
def test_rotated_files_newest_first(tmp_path: Path) -> None:
    current = write_log(tmp_path / "order_processing.log", ["x"])
    for name in [
        "order_processing.log.2.gz",
        "order_processing.log.1",
        "order_processing.20261120T010000.1.log.zst",
        "order_processing.20261121T010000.2.log.zst",
        "order_processing.20261121T010000.1.log.zst",
        "other.log.1",
    ]:
        (tmp_path / name).write_bytes(b"")
    assert [path.name for path in rotated_files(current)] == [
        "order_processing.log",
        "order_processing.log.1",
        "order_processing.log.2.gz",
        "order_processing.20261121T010000.2.log.zst",
        "order_processing.20261121T010000.1.log.zst",
        "order_processing.20261120T010000.1.log.zst",
    ]


def test_log_rotation_dag_archives_are_found_in_order(tmp_path: Path) -> None:
    """Names the log_rotation DAG gives (toilless.sops.log_rotation.naming): <live>.<stamp>.<seq>[.zst|.gz]."""
    from toilless.sops.log_rotation.naming import RotatedName

    current = write_log(tmp_path / "order_processing.log", ["x"])
    names = [
        RotatedName(stamp="20261122T033000Z", seq=1, live=current.name, ext="").pending_name,
        RotatedName(stamp="20261121T033000Z", seq=2, live=current.name, ext="").archive_name("zstd"),
        RotatedName(stamp="20261121T033000Z", seq=1, live=current.name, ext="").archive_name("gzip"),
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    assert [path.name for path in rotated_files(current)] == [current.name, *names]


@pytest.mark.parametrize("archive", [pytest.param("plain", id="dot1"), "gz", "zst"])
def test_latest_run_spans_a_rotation(tmp_path: Path, archive: str) -> None:
    older = "2026-11-23 09:00:00 INFO Startup...\n2026-11-23 09:00:01 INFO Processing Order 4\n"
    newer = "2026-11-23 09:00:13 INFO Order Processed\n2026-11-23 09:00:14 INFO All Orders processed.\n"
    (tmp_path / "order_processing.log").write_text(newer)
    if archive == "plain":
        (tmp_path / "order_processing.log.1").write_text(older)
    elif archive == "gz":
        (tmp_path / "order_processing.log.1.gz").write_bytes(gzip.compress(older.encode()))
    else:
        (tmp_path / "order_processing.20261123T090500.1.log.zst").write_bytes(
            zstandard.ZstdCompressor().compress(older.encode())
        )
    lines, found, files, _ = read_latest_run(tmp_path / "order_processing.log", allowed_roots=[str(tmp_path)])
    assert found
    assert len(files) == 2
    summary = summarize_run(lines, found_startup=found)
    assert summary.orders_processed == 1
    assert summary.finished
    assert summary.started_at == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_missing_log_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LogAccessError, match="does not exist"):
        read_latest_run(tmp_path / "order_processing.log", allowed_roots=[str(tmp_path)])


# -- log paths -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("/etc/passwd", id="outside-root"),
        pytest.param("{root}/../../etc/passwd", id="dot-dot"),
        pytest.param("relative/order_processing.log", id="relative"),
        pytest.param("{root}/x.log'; DROP TABLE orders; --\n", id="sql-and-newline"),
        pytest.param("{root}/link/passwd", id="symlink-escape"),
        pytest.param("", id="empty"),
    ],
)
def test_log_path_outside_the_roots_is_refused(tmp_path: Path, raw: str) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    (root / "link").symlink_to("/etc")
    with pytest.raises(LogAccessError):
        resolve_log_path(raw.format(root=root), [str(root)])


def test_log_path_inside_a_root_is_accepted(tmp_path: Path) -> None:
    assert resolve_log_path(f"{tmp_path}/a/../order_processing.log", [str(tmp_path)]) == (
        tmp_path / "order_processing.log"
    )
