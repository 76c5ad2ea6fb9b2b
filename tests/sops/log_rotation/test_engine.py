"""The engine on real files in a temp dir: rotate, compress+verify, recover leftovers, retention, dry run."""

from __future__ import annotations

import gzip
import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import zstandard

from toilless.sops.log_rotation import compress, engine, naming, paths
from toilless.sops.log_rotation.retention import Archive, select_expired
from toilless.sops.log_rotation.settings import LogSet, Retention, parse_log_sets

NOW = datetime(2026, 11, 22, 4, 30, tzinfo=UTC)


def make_log_set(root: Path, **overrides: object) -> LogSet:
    spec = {"root": str(root), "globs": ["*.log"], "min_size": 1, "reopen": {"timeout_seconds": 1}, **overrides}
    return parse_log_sets({"allowed_roots": [str(root)], "log_sets": {"web": spec}})["web"]


def lines(count: int, start: int = 0) -> bytes:
    return b"".join(
        f"2026-11-22T03:00:{i % 60:02d}Z INFO Processing Order {i} for customer {i * 7 % 1000}\n".encode()
        for i in range(start, start + count)
    )


def decompress(path: Path) -> bytes:
    if path.suffix == ".gz":
        return gzip.decompress(path.read_bytes())
    with zstandard.ZstdDecompressor().stream_reader(path.read_bytes(), read_across_frames=True) as reader:
        return reader.read()


def snapshot(directory: Path) -> dict[str, tuple[int, int, int, str]]:
    """Every entry with inode, size, mtime and content hash: 'nothing changed' made checkable."""
    result = {}
    for entry in sorted(directory.rglob("*")):
        if entry.is_symlink() or not entry.is_file():
            continue
        info = entry.stat()
        result[str(entry)] = (
            info.st_ino,
            info.st_size,
            info.st_mtime_ns,
            hashlib.sha256(entry.read_bytes()).hexdigest(),
        )
    return result


@pytest.mark.parametrize("compression", [pytest.param("zstd", id="zstd"), pytest.param("gzip", id="gzip")])
def test_rename_rotation_archives_everything_and_keeps_permissions(tmp_path: Path, compression: str) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    live = root / "app.log"
    data = lines(5000)
    live.write_bytes(data)
    os.chmod(live, 0o640)
    os.utime(live, (1_700_000_000, 1_700_000_000))
    result = engine.rotate_log_set(make_log_set(root, compression=compression), state_dir=tmp_path / "state", now=NOW)
    assert not result["errors"]
    [archive] = [Path(item["archive"]) for item in result["compressed"]]
    assert archive.name == f"app.log.20261122T043000Z.1{naming.EXTENSIONS[compression]}"
    assert decompress(archive) == data
    assert archive.stat().st_mode & 0o777 == 0o640
    assert archive.stat().st_mtime == 1_700_000_000
    assert live.exists()
    assert live.stat().st_size == 0
    assert live.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in root.iterdir()) == sorted(["app.log", archive.name])
    assert result["bytes_before"] == len(data)
    assert result["bytes_after"] == archive.stat().st_size


def test_small_files_are_not_due(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    (root / "app.log").write_bytes(b"tiny\n")
    result = engine.rotate_log_set(make_log_set(root, min_size="1KiB"), state_dir=tmp_path / "s", now=NOW)
    assert result["rotated"] == []
    assert result["not_due"][0]["path"] == str(root / "app.log")
    assert (root / "app.log").read_bytes() == b"tiny\n"


def test_dry_run_lists_exactly_what_would_happen_and_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    (root / "app.log").write_bytes(lines(100))
    (root / "app.log.20261120T043000Z.1").write_bytes(lines(10))  # pending from an interrupted run
    (root / ".app.log.20261120T043000Z.1.zst.toilless-tmp").write_bytes(b"half")
    for day in range(3):
        (root / f"app.log.2026111{day}T043000Z.1.zst").write_bytes(b"old archive")
    log_set = make_log_set(root, retention={"max_archives": 2})
    before = snapshot(root)
    rotation = engine.rotate_log_set(log_set, state_dir=tmp_path / "s", dry_run=True, now=NOW)
    kept = engine.apply_retention(
        log_set, state_dir=tmp_path / "s", dry_run=True, now=NOW, planned_archives=rotation["compressed"]
    )
    usage = engine.measure_mount_usage(log_set, state_dir=tmp_path / "s", dry_run=True, now=NOW)
    assert snapshot(root) == before
    assert not (tmp_path / "s").exists()  # not even the lock or the usage history
    assert [item["rotated"] for item in rotation["rotated"]] == [str(root / "app.log.20261122T043000Z.1")]
    assert sorted(item["source"] for item in rotation["compressed"]) == [
        str(root / "app.log.20261120T043000Z.1"),
        str(root / "app.log.20261122T043000Z.1"),
    ]
    assert rotation["removed_tmp"] == [str(root / ".app.log.20261120T043000Z.1.zst.toilless-tmp")]
    # Two new archives arrive, so only the newest 2 of 5 stay: all 3 existing ones would go.
    assert sorted(Path(item["path"]).name for item in kept["deleted"]) == [
        f"app.log.2026111{day}T043000Z.1.zst" for day in range(3)
    ]
    assert usage["usage"]["percent_used"] > 0


def test_leftovers_of_a_crash_are_finished(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    log_set = make_log_set(root)
    # 1: a pending file and its complete archive (crash between publishing the archive and removing the source).
    done_src = root / "app.log.20261120T043000Z.1"
    done_src.write_bytes(lines(50))
    compress.compress_verified(str(done_src), str(root / "app.log.20261120T043000Z.1.zst"))
    # 2: a pending file and a half-written temporary (crash while compressing).
    half_src = root / "app.log.20261121T043000Z.1"
    half_src.write_bytes(lines(60, start=50))
    tmp = root / naming.tmp_name("app.log.20261121T043000Z.1.zst")
    tmp.write_bytes(b"\x28\xb5\x2f\xfd partial")
    # 3: a corrupt file under an archive name of ours with its pending source still present.
    bad_src = root / "app.log.20261121T050000Z.1"
    bad_src.write_bytes(lines(70, start=110))
    (root / "app.log.20261121T050000Z.1.zst").write_bytes(b"garbage")
    result = engine.rotate_log_set(log_set, state_dir=tmp_path / "s", now=NOW)
    assert result["removed_tmp"] == [str(tmp)]
    assert [item["source"] for item in result["recovered"]] == [str(done_src)]
    names = sorted(p.name for p in root.iterdir())
    assert names == [
        "app.log.20261120T043000Z.1.zst",
        "app.log.20261121T043000Z.1.zst",
        "app.log.20261121T050000Z.1.zst",
    ]
    assert decompress(root / "app.log.20261121T043000Z.1.zst") == lines(60, start=50)
    assert decompress(root / "app.log.20261121T050000Z.1.zst") == lines(70, start=110)


def test_a_failed_verification_keeps_the_source_and_leaves_no_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "app.log.20261122T043000Z.1"
    source.write_bytes(lines(100))
    real_write = compress._write_all

    def flipped_bit(fd: int, data: bytes | bytearray) -> None:
        # What reaches the file differs from the verified frame by one bit (a torn or corrupted write).
        real_write(fd, bytes(data[:-1]) + bytes([data[-1] ^ 1]))

    monkeypatch.setattr(compress, "_write_all", flipped_bit)
    with pytest.raises(compress.VerificationError):
        compress.compress_verified(str(source), str(tmp_path / "app.log.20261122T043000Z.1.zst"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [source.name]
    assert source.read_bytes() == lines(100)


def test_copytruncate_copies_then_truncates_in_place(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    live = root / "app.log"
    live.write_bytes(lines(1000))
    inode = live.stat().st_ino
    result = engine.rotate_log_set(make_log_set(root, mode="copytruncate"), state_dir=tmp_path / "s", now=NOW)
    [rotated] = result["rotated"]
    assert rotated["bytes"] == len(lines(1000))
    assert rotated["hole_bytes"] == 0
    assert rotated["window_microseconds"] < 100_000
    assert live.stat().st_ino == inode
    assert live.stat().st_size == 0
    assert decompress(Path(result["compressed"][0]["archive"])) == lines(1000)


def test_path_escapes_are_rejected_and_nothing_outside_changes(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.log").write_bytes(lines(100))
    (root / "link.log").symlink_to(outside / "secret.log")
    (root / "elsewhere").symlink_to(outside, target_is_directory=True)
    (root / "etc.log").symlink_to("/etc/passwd")
    etc_before = Path("/etc/passwd").stat()
    outside_before = snapshot(outside)
    log_set = make_log_set(root, globs=["*.log", "elsewhere/*.log"])
    result = engine.rotate_log_set(log_set, state_dir=tmp_path / "s", now=NOW)
    assert result["rotated"] == []
    assert {Path(item["path"]).name for item in result["skipped"]} == {"link.log", "etc.log", "secret.log"}
    for bad in ["../outside/*.log", str(outside / "*.log"), "/etc/*"]:
        with pytest.raises(paths.PathEscapeError):
            engine.rotate_log_set(log_set, state_dir=tmp_path / "s", now=NOW, extra_globs=(bad,))
    assert snapshot(outside) == outside_before
    after = Path("/etc/passwd").stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        etc_before.st_ino,
        etc_before.st_size,
        etc_before.st_mtime_ns,
    )


def test_retention_deletes_only_our_archives_beyond_the_limits(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    for day in range(1, 8):
        (root / f"app.log.202611{day:02d}T043000Z.1.zst").write_bytes(b"x" * 100)
    foreign = ["app.log.1.gz", "app.log.20261101T043000Z.1.zst.bak", "notes.txt"]
    for name in foreign:
        (root / name).write_bytes(b"keep me")
    (root / "app.log.20261101T043000Z.2").write_bytes(b"pending is never deleted")
    log_set = make_log_set(root, retention={"max_age_days": 19, "max_archives": 5})
    result = engine.apply_retention(log_set, state_dir=tmp_path / "s", now=NOW)
    deleted = sorted(Path(item["path"]).name for item in result["deleted"])
    # 11-01 and 11-02 are older than 19 days (11-03 04:30 is exactly 19); 11-03..07 are the newest 5: kept.
    assert deleted == [
        "app.log.20261101T043000Z.1.zst",
        "app.log.20261102T043000Z.1.zst",
    ]
    for name in [*foreign, "app.log.20261101T043000Z.2"]:
        assert (root / name).exists()
    assert len(list(root.glob("app.log.*T*Z.1.zst"))) == 5


@pytest.mark.parametrize(
    ("retention", "expected_deleted"),
    [
        pytest.param(Retention(), [], id="no-limits"),
        pytest.param(Retention(max_archives=2), ["d2", "d3", "d4"], id="count"),
        pytest.param(Retention(max_age_days=2.5), ["d3", "d4"], id="age"),
        pytest.param(Retention(max_total_bytes=250), ["d2", "d3", "d4"], id="total-size"),
        pytest.param(Retention(max_archives=0), ["d0", "d1", "d2", "d3", "d4", "other"], id="keep-none"),
    ],
)
def test_select_expired(retention: Retention, expected_deleted: list[str]) -> None:
    archives = [
        Archive(path=f"d{age}", live="/x/app.log", rotated_at=NOW - timedelta(days=age), seq=1, size=100)
        for age in range(5)
    ]
    other = Archive(path="other", live="/x/err.log", rotated_at=NOW - timedelta(days=1), seq=1, size=100)
    expired = select_expired([*archives, other], retention, NOW)
    assert sorted(item.archive.path for item in expired) == expected_deleted


def test_a_source_that_grows_while_compressed_is_kept_and_retried_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "app.log.20261122T043000Z.1"
    source.write_bytes(lines(100))
    original = compress._compress_stream

    def late_writer(*args: object) -> compress.Digest:
        digest = original(*args)  # type: ignore[arg-type]
        with source.open("ab") as handle:  # a writer that had not reopened yet appends a line
            handle.write(b"late line\n")
        return digest

    monkeypatch.setattr(compress, "_compress_stream", late_writer)
    with pytest.raises(compress.SourceChangedError):
        compress.compress_verified(str(source), str(tmp_path / "app.log.20261122T043000Z.1.zst"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [source.name]
    assert source.read_bytes() == lines(100) + b"late line\n"
