"""Compress a rotated file into a verified archive, crash-safely, in bounded memory.

The only way an archive name comes to exist is :func:`os.rename` of a temporary file that was fully written,
fsynced and verified (decompressed and compared by CRC-32 checksum and length with its source). A crash (kill -9,
power loss) at any moment therefore leaves the source plus, at most, a hidden ``.toilless-tmp`` file that the
next run deletes and redoes. The caller removes the source only after this function returned, so the source
and the archive overlap, never miss.
"""

from __future__ import annotations

import gzip
import os
import stat
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO

from toilless.sops.log_rotation import naming

CHUNK_BYTES = 1 << 20


class SourceChangedError(RuntimeError):
    """The source grew or changed while it was compressed (a writer still holds it); the archive was
    discarded."""


class VerificationError(RuntimeError):
    """The archive did not decompress to exactly its source; it was discarded and the source kept."""


@dataclass(frozen=True)
class Digest:
    """Checksum and length of a byte stream.

    CRC-32 rather than a cryptographic hash: it guards against torn writes, truncation and bit rot (not against an
    adversary, who could rewrite the source too), and at ~5 GB/s it costs a fraction of SHA-256's time twice per
    gigabyte.
    """

    crc32: int
    size: int


@dataclass(frozen=True)
class ArchiveResult:
    archive: str
    source_bytes: int
    archive_bytes: int
    crc32: int
    settings: str = ""  # the compression settings used, and why (adaptive choice)


#: zstd levels tried before the configured settings when ``adaptive`` is on, cheapest first.
ADAPTIVE_LEVELS = (1, 2)
#: Then these tuned settings (level, ZstdCompressionParameters overrides), cheapest first, before the configured ones.
#: Greedy matching with 16 probes of a row-hashed 2^17 table and matches of 6+ bytes: on access logs and syslog it
#: is 0.96-0.97 of gzip -6 at 2.1-2.5x its speed per core, 15-30 % cheaper than the lazy fallback in
#: include/config/log_rotation.yaml; on the order processor it is 9 % larger than gzip -6 (zstd 2 takes that one).
ADAPTIVE_TUNED: tuple[tuple[int, dict[str, Any], str], ...] = (
    (5, {"strategy": "greedy", "min_match": 6, "hash_log": 17, "search_log": 4, "window_log": 20}, "zstd 5 greedy"),
)
#: A cheaper candidate is taken only if, on the sample, it is at most this fraction of gzip -6's size: the margin
#: covers the difference between a sample and the whole file.
ADAPTIVE_MARGIN = 0.97
#: The same for :data:`ADAPTIVE_TUNED`: their ratio on a 1 MiB sample was within 0.007 of the whole file's on every
#: style (and 0.015 pessimistic on access logs, whose repeats lie further apart than a sample holds), so half the
#: fast levels' margin (whose ratios moved by up to 0.011) is kept.
ADAPTIVE_TUNED_MARGIN = 0.985
#: 1 MiB: on the benchmark corpus the ratios of a 1 MiB and a 4 MiB sample differ by at most 0.011, and the probe
#: (gzip -6 of the sample plus every candidate) costs ~30 ms instead of ~100 ms, a fifth of a 96 MiB file's wall time.
ADAPTIVE_SAMPLE_BYTES = 1 << 20


@dataclass(frozen=True)
class ZstdChoice:
    level: int
    parameters: dict[str, Any]
    note: str


def choose_zstd(
    sample: bytes,
    level: int,
    parameters: dict[str, Any],
    *,
    margin: float = ADAPTIVE_MARGIN,
    tuned_margin: float = ADAPTIVE_TUNED_MARGIN,
) -> ZstdChoice:
    """The cheapest zstd settings that compress ``sample`` (the start of a log) to at most ``margin`` times what
    gzip -6 makes of it; the configured ``level`` + ``parameters`` when no cheaper one does.

    Logs differ: zstd's fastest levels beat gzip -6 by 5-8 % on JSON lines and stack traces at ~6x its speed, but
    lose by 15 % on access logs, which need more match searching (:data:`ADAPTIVE_TUNED`, else the configured
    lazy matching).
    """
    gzip_bytes = len(zlib.compress(sample, 6))
    candidates: list[tuple[int, dict[str, Any], str, float]] = [
        (fast, {}, f"zstd {fast}", margin) for fast in ADAPTIVE_LEVELS if fast < level or parameters
    ]
    if parameters or level >= 6:
        # Cheaper than the configured tuned settings or a high level, not than a plain low level.
        candidates += [(*tuned, tuned_margin) for tuned in ADAPTIVE_TUNED]
    for candidate, overrides, label, allowed in candidates:
        size = len(zstd_compressor(candidate, 0, overrides).compress(sample))
        if size <= allowed * gzip_bytes:
            return ZstdChoice(candidate, dict(overrides), f"{label} (sample: {size / gzip_bytes:.2f} of gzip -6)")
    size = len(zstd_compressor(level, 0, parameters).compress(sample))
    return ZstdChoice(level, parameters, f"zstd {level} tuned (sample: {size / gzip_bytes:.2f} of gzip -6)")


def fsync_dir(directory: str) -> None:
    """Make a rename/unlink in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_digest(path: str) -> Digest:
    """Checksum and length of a plain file, streamed."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        return _digest_stream(handle)


def archive_digest(path: str) -> Digest:
    """Checksum and length of an archive's decompressed content, streamed. Raises on a corrupt archive."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as raw:
        if path.endswith(".gz") or path.endswith(f".gz{naming.TMP_SUFFIX}"):
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                return _digest_stream(stream)
        import zstandard

        with zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=False) as stream:
            return _digest_stream(stream)


def _digest_stream(stream: BinaryIO) -> Digest:
    crc = 0
    size = 0
    while chunk := stream.read(CHUNK_BYTES):
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)
    return Digest(crc, size)


def compress_verified(
    source: str,
    archive: str,
    *,
    compression: str = "zstd",
    level: int = 2,
    threads: int = 0,
    zstd_parameters: dict[str, Any] | None = None,
    adaptive: bool = False,
    archive_mode: int | None = None,
    archive_uid: int | None = None,
    archive_gid: int | None = None,
) -> ArchiveResult:
    """Write ``archive`` from ``source`` through a temporary file; returns once the archive is durable and
    verified.

    Permissions and ownership come from the source unless given; the source's mtime is kept. The source is
    left in place: removing it is the caller's next step.
    """
    directory = os.path.dirname(source)
    tmp = os.path.join(directory, naming.tmp_name(os.path.basename(archive)))
    remove_if_exists(tmp)
    src_fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        src_info = os.fstat(src_fd)
        if not stat.S_ISREG(src_info.st_mode):
            raise SourceChangedError(f"{source} is not a regular file")
        # 0600 until verified: a half-written archive is never readable by others, then it gets its final
        # mode.
        parameters = dict(zstd_parameters or {})
        settings = f"{compression} {level}"
        if compression == "zstd" and adaptive and src_info.st_size >= 4 * ADAPTIVE_SAMPLE_BYTES:
            choice = choose_zstd(os.pread(src_fd, ADAPTIVE_SAMPLE_BYTES, 0), level, parameters)
            level, parameters, settings = choice.level, choice.parameters, choice.note
        elif compression == "zstd" and parameters:
            settings += " tuned"
        tmp_fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(src_fd, "rb", closefd=False) as src, os.fdopen(tmp_fd, "wb", closefd=False) as out:
                digest = _compress_stream(src, out, compression, level, threads, parameters)
                out.flush()
                os.fsync(tmp_fd)
            after = os.fstat(src_fd)
            if after.st_size != digest.size or after.st_ino != src_info.st_ino:
                raise SourceChangedError(
                    f"{source} changed while it was compressed ({digest.size} bytes read, "
                    f"now {after.st_size}): a writer still holds it"
                )
            check = archive_digest(tmp)
            if check != digest:
                raise VerificationError(
                    f"{tmp} decompressed to {check.size} bytes crc32 {check.crc32:08x}, source has "
                    f"{digest.size} bytes crc32 {digest.crc32:08x}"
                )
            os.fchmod(tmp_fd, archive_mode if archive_mode is not None else stat.S_IMODE(src_info.st_mode))
            uid = archive_uid if archive_uid is not None else src_info.st_uid
            gid = archive_gid if archive_gid is not None else src_info.st_gid
            if (uid, gid) != (os.geteuid(), os.getegid()):
                os.fchown(tmp_fd, uid, gid)
            os.utime(tmp_fd, ns=(src_info.st_atime_ns, src_info.st_mtime_ns))
            os.fsync(tmp_fd)
        finally:
            os.close(tmp_fd)
    except BaseException:
        remove_if_exists(tmp)
        raise
    finally:
        os.close(src_fd)
    os.rename(tmp, archive)
    fsync_dir(directory)
    return ArchiveResult(archive, digest.size, os.stat(archive).st_size, digest.crc32, settings)


def zstd_compressor(level: int, threads: int, parameters: dict[str, Any]) -> Any:
    """A zstd compressor for ``level`` with ``parameters`` (ZstdCompressionParameters names) overriding the
    level's own; ``strategy`` by name. A content checksum is written into every frame."""
    import zstandard

    overrides = dict(parameters)
    if "strategy" in overrides:
        overrides["strategy"] = getattr(zstandard, f"STRATEGY_{str(overrides['strategy']).upper()}")
    params = zstandard.ZstdCompressionParameters.from_level(level, threads=threads, write_checksum=True, **overrides)
    return zstandard.ZstdCompressor(compression_params=params)


def _compress_stream(
    src: BinaryIO, out: BinaryIO, compression: str, level: int, threads: int, zstd_parameters: dict[str, Any]
) -> Digest:
    crc = 0
    size = 0
    if compression == "gzip":
        # mtime=0: the same input gives the same bytes, and the file's own mtime carries the time.
        writer: BinaryIO = gzip.GzipFile(fileobj=out, mode="wb", compresslevel=level, mtime=0)  # type: ignore[assignment]
    elif compression == "zstd":
        writer = zstd_compressor(level, threads, zstd_parameters).stream_writer(out, closefd=False)  # type: ignore[assignment]
    else:
        raise ValueError(f"unknown compression {compression!r}")
    with writer:
        while chunk := src.read(CHUNK_BYTES):
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
            writer.write(chunk)
    return Digest(crc, size)


def remove_if_exists(path: str) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True
