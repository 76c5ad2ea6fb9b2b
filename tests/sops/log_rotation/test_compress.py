"""Archives written as independent members compressed on parallel threads (zstd frames, gzip members by
libdeflate): valid for every reader, verified before they are published; gzip chosen per file where zstd's fast
levels lose to gzip -6 (access logs, syslog)."""

from __future__ import annotations

import gzip
import os
import random
import subprocess
import zlib
from datetime import UTC, datetime
from pathlib import Path

import deflate
import pytest
import zstandard

from benchmarks.log_rotation_corpus import STYLES
from toilless.common.config import read_defaults
from toilless.sops.log_rotation import compress, engine, naming
from toilless.sops.log_rotation.settings import parse_log_sets

NOW = datetime(2026, 11, 22, 4, 30, tzinfo=UTC)
PENDING = "app.log.20261122T043000Z.1"


def corpus(style: str, size: int) -> bytes:
    lines = STYLES[style](random.Random(5), datetime(2026, 11, 21, tzinfo=UTC))
    text = bytearray()
    while len(text) < size:
        text += next(lines).encode()
    return bytes(text)


def members(archive: bytes) -> int:
    """How many gzip members or zstd frames ``archive`` holds (each decodes on its own)."""
    count = 0
    stream = archive
    while stream:
        if stream[:4] == b"\x28\xb5\x2f\xfd":
            decompressor = zstandard.ZstdDecompressor().decompressobj()
        else:
            decompressor = zlib.decompressobj(31)
        decompressor.decompress(stream)
        stream = decompressor.unused_data
        count += 1
    return count


@pytest.mark.parametrize(
    ("compression", "tool"),
    [pytest.param("gzip", ["gzip", "-dc"], id="gzip"), pytest.param("zstd", ["zstd", "-dcq"], id="zstd")],
)
@pytest.mark.parametrize("threads", [pytest.param(0, id="in-the-reading-thread"), pytest.param(2, id="two-threads")])
def test_an_archive_is_a_series_of_members_every_reader_decompresses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threads: int, compression: str, tool: list[str]
) -> None:
    monkeypatch.setattr(compress, "MEMBER_BYTES", 64 * 1024)
    data = corpus("syslog", 700 * 1024)
    source = tmp_path / PENDING
    source.write_bytes(data)
    archive_name = f"{PENDING}{naming.EXTENSIONS[compression]}"
    done = compress.compress_verified(
        str(source), str(tmp_path / archive_name), compression=compression, threads=threads
    )
    assert done.archive == str(tmp_path / archive_name)
    archive = Path(done.archive).read_bytes()
    assert members(archive) == 11  # 700 KiB in 64 KiB members, in order
    assert subprocess.run([*tool, done.archive], capture_output=True, check=True).stdout == data
    if compression == "gzip":
        assert gzip.decompress(archive) == data
    else:
        with zstandard.ZstdDecompressor().stream_reader(archive, read_across_frames=True) as reader:
            assert reader.read() == data
    assert compress.archive_digest(done.archive) == compress.file_digest(str(source))
    assert done.source_bytes == len(data)
    assert done.crc32 == zlib.crc32(data)


@pytest.mark.parametrize(
    ("compression", "tool"),
    [pytest.param("gzip", ["gzip", "-dc"], id="gzip"), pytest.param("zstd", ["zstd", "-dcq"], id="zstd")],
)
def test_an_empty_source_gives_an_archive_other_tools_read(tmp_path: Path, compression: str, tool: list[str]) -> None:
    source = tmp_path / PENDING
    source.write_bytes(b"")
    done = compress.compress_verified(
        str(source), str(tmp_path / f"{PENDING}{naming.EXTENSIONS[compression]}"), compression=compression, threads=2
    )
    assert done.archive_bytes > 0
    assert subprocess.run([*tool, done.archive], capture_output=True, check=True).stdout == b""
    assert compress.archive_digest(done.archive) == compress.Digest(0, 0)


def test_a_member_that_does_not_decompress_to_its_source_is_never_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compressor bug (here: one member made from other bytes) is caught before the rename."""
    monkeypatch.setattr(compress, "MEMBER_BYTES", 64 * 1024)
    real = deflate.gzip_compress
    calls = []

    def wrong_second_member(data: bytes, level: int) -> bytearray:
        calls.append(len(data))
        return real(data[:-1] + b"?" if len(calls) == 2 else data, level)

    monkeypatch.setattr(deflate, "gzip_compress", wrong_second_member)
    data = corpus("access", 300 * 1024)
    source = tmp_path / PENDING
    source.write_bytes(data)
    with pytest.raises(compress.VerificationError, match="decompressed to other bytes"):
        compress.compress_verified(str(source), str(tmp_path / f"{PENDING}.gz"), compression="gzip", threads=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [PENDING]
    assert source.read_bytes() == data


def test_a_zstd_frame_that_does_not_decompress_to_its_source_is_never_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compress, "MEMBER_BYTES", 64 * 1024)
    real = compress.zstd_compressor

    class OffByOne:
        def __init__(self, compressor: object) -> None:
            self.compressor = compressor
            self.calls = 0

        def compress(self, data: bytes) -> bytes:
            self.calls += 1
            return self.compressor.compress(data[:-1] + b"?" if self.calls == 3 else data)  # type: ignore[attr-defined]

    monkeypatch.setattr(compress, "zstd_compressor", lambda *args: OffByOne(real(*args)))
    data = corpus("json", 300 * 1024)
    source = tmp_path / PENDING
    source.write_bytes(data)
    with pytest.raises(compress.VerificationError, match="decompressed to other bytes"):
        compress.compress_verified(str(source), str(tmp_path / f"{PENDING}.zst"), threads=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == [PENDING]
    assert source.read_bytes() == data


def test_an_archive_that_does_not_read_back_as_written_is_never_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What reaches the file is checked too: a byte lost between the verified member and the disk is caught."""
    monkeypatch.setattr(compress, "MEMBER_BYTES", 64 * 1024)
    real = compress._write_all

    def torn_write(fd: int, data: bytes | bytearray) -> None:
        real(fd, bytes(data[:100]) + bytes([data[100] ^ 1]) + bytes(data[101:]))

    monkeypatch.setattr(compress, "_write_all", torn_write)
    data = corpus("access", 300 * 1024)
    source = tmp_path / PENDING
    source.write_bytes(data)
    with pytest.raises(compress.VerificationError, match="does not read back as written"):
        compress.compress_verified(str(source), str(tmp_path / f"{PENDING}.gz"), compression="gzip")
    assert sorted(p.name for p in tmp_path.iterdir()) == [PENDING]


def shipped_log_set(root: Path, **overrides: object):  # type: ignore[no-untyped-def]
    defaults = read_defaults("log_rotation")["defaults"]
    spec = {
        key: defaults[key]
        for key in (
            "compression",
            "compression_level",
            "compression_threads",
            "zstd_parameters",
            "adaptive_compression",
        )
    }
    spec.update(root=str(root), globs=["*.log"], min_size=1, reopen={"timeout_seconds": 0}, **overrides)
    return parse_log_sets({"allowed_roots": [str(root)], "log_sets": {"web": spec}})["web"]


@pytest.mark.parametrize(
    ("style", "extension"),
    [pytest.param("access", ".gz", id="access-log-becomes-gz"), pytest.param("json", ".zst", id="json-stays-zst")],
)
def test_adaptive_rotation_publishes_the_format_it_chose_and_retention_counts_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, style: str, extension: str
) -> None:
    # Without the greedy zstd candidate (which access logs get first), libdeflate is the next one for them.
    monkeypatch.setattr(compress, "ADAPTIVE_TUNED", ())
    root = tmp_path / "logs"
    root.mkdir()
    data = corpus(style, 4 * compress.ADAPTIVE_SAMPLE_BYTES)
    (root / "app.log").write_bytes(data)
    log_set = shipped_log_set(root, retention={"max_archives": 1})
    result = engine.rotate_log_set(log_set, state_dir=tmp_path / "state", now=NOW)
    assert not result["errors"], result["errors"]
    [done] = result["compressed"]
    assert done["archive"] == str(root / f"{PENDING}{extension}")
    assert sorted(p.name for p in root.iterdir()) == ["app.log", f"{PENDING}{extension}"]
    assert compress.archive_digest(done["archive"]) == compress.Digest(deflate.crc32(data), len(data))
    assert done["settings"].startswith("gzip 6" if extension == ".gz" else "zstd 1"), done["settings"]
    # Retention sees it as one of ours: a second rotation with max_archives 1 expires the first archive.
    (root / "app.log").write_bytes(data)
    engine.rotate_log_set(log_set, state_dir=tmp_path / "state", now=NOW.replace(day=23))
    outcome = engine.apply_retention(log_set, state_dir=tmp_path / "state", now=NOW.replace(day=23))
    assert [Path(item["path"]).name for item in outcome["deleted"]] == [f"{PENDING}{extension}"]


def test_a_pending_file_whose_gz_archive_was_published_is_recovered_not_compressed_again(tmp_path: Path) -> None:
    """A crash between publishing a .gz (adaptive choice) and removing the source, in a log set configured for
    zstd: the next run finds the .gz, checks it and removes the source."""
    root = tmp_path / "logs"
    root.mkdir()
    data = corpus("access", 200 * 1024)
    (root / PENDING).write_bytes(data)
    compress.compress_verified(str(root / PENDING), str(root / f"{PENDING}.gz"), compression="gzip")
    published = os.stat(root / f"{PENDING}.gz")
    result = engine.rotate_log_set(shipped_log_set(root), state_dir=tmp_path / "state", now=NOW)
    assert not result["errors"], result["errors"]
    assert result["recovered"] == [{"source": str(root / PENDING), "archive": str(root / f"{PENDING}.gz")}]
    assert sorted(p.name for p in root.iterdir()) == [f"{PENDING}.gz"]
    assert os.stat(root / f"{PENDING}.gz").st_ino == published.st_ino


def test_a_corrupt_archive_of_the_other_format_is_replaced_not_left_beside_the_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compress, "ADAPTIVE_TUNED", ())  # access logs then get libdeflate (.gz)
    root = tmp_path / "logs"
    root.mkdir()
    data = corpus("access", 4 * compress.ADAPTIVE_SAMPLE_BYTES)
    (root / PENDING).write_bytes(data)
    (root / f"{PENDING}.zst").write_bytes(b"not zstd")  # cut off by a disk fault, say
    result = engine.rotate_log_set(shipped_log_set(root), state_dir=tmp_path / "state", now=NOW)
    assert not result["errors"], result["errors"]
    assert sorted(p.name for p in root.iterdir()) == [f"{PENDING}.gz"]
    assert gzip.decompress((root / f"{PENDING}.gz").read_bytes()) == data


def test_the_order_backlog_reader_reads_a_multi_member_gz_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """order_backlog_check reads rotated .gz archives through gzip.GzipFile, which reads every member."""
    from toilless.sops.order_backlog_check.log_files import read_text

    monkeypatch.setattr(compress, "MEMBER_BYTES", 16 * 1024)
    data = corpus("orders", 100 * 1024)
    source = tmp_path / "order_processing.log.20261122T043000Z.1"
    source.write_bytes(data)
    done = compress.compress_verified(str(source), f"{source}.gz", compression="gzip")
    assert members(Path(done.archive).read_bytes()) > 5
    tail = read_text(Path(done.archive), 10 * 1024, allowed_roots=[str(tmp_path)])
    assert not tail.gave_up
    assert tail.text
    assert data.decode().endswith(tail.text)
    assert tail.cut_bytes > 80 * 1024


def test_with_extension_names_the_archive_for_the_format() -> None:
    assert naming.with_extension("/l/app.log.20261122T043000Z.1.zst", "gzip") == "/l/app.log.20261122T043000Z.1.gz"
    assert naming.with_extension("/l/app.log.20261122T043000Z.1.gz", "zstd") == "/l/app.log.20261122T043000Z.1.zst"
    with pytest.raises(ValueError, match="archive extension"):
        naming.with_extension("/l/app.log", "gzip")


@pytest.mark.parametrize("supported", [pytest.param(True, id="supported"), pytest.param(False, id="unsupported")])
def test_each_member_s_writeback_starts_while_the_next_is_compressed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, supported: bool
) -> None:
    """The archive's bytes go to disk member by member (so the fsync before publishing waits for little); a file
    system without posix_fadvise changes nothing but that."""
    monkeypatch.setattr(compress, "MEMBER_BYTES", 64 * 1024)
    advised: list[tuple[int, int, int]] = []

    def fadvise(fd: int, offset: int, length: int, advice: int) -> None:
        advised.append((offset, length, advice))
        if not supported:
            raise OSError(95, "Operation not supported")

    monkeypatch.setattr(os, "posix_fadvise", fadvise)
    data = corpus("syslog", 700 * 1024)
    source = tmp_path / PENDING
    source.write_bytes(data)
    done = compress.compress_verified(str(source), f"{source}.zst", threads=2)
    assert compress.archive_digest(done.archive) == compress.Digest(deflate.crc32(data), len(data))
    assert {advice for _, _, advice in advised} == {os.POSIX_FADV_DONTNEED}
    assert len(advised) == members(Path(done.archive).read_bytes()) == 11
    ends = [offset + length for offset, length, _ in advised]
    assert [offset for offset, _, _ in advised] == [0, *ends[:-1]]  # member after member, no gap
    assert ends[-1] == done.archive_bytes
