"""Log sets as data: sizes, defaults, validation errors, and the shipped YAML."""

from __future__ import annotations

import random
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from benchmarks.log_rotation_corpus import STYLES
from toilless.common.config import read_defaults
from toilless.sops.log_rotation import compress
from toilless.sops.log_rotation.settings import (
    LogRotationConfigError,
    log_set_from_dict,
    parse_log_sets,
    parse_size,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(1048576, 1048576, id="int"),
        pytest.param("100", 100, id="plain-string"),
        pytest.param("1MiB", 1024**2, id="mebibytes"),
        pytest.param("1M", 1024**2, id="logrotate-M-is-binary"),
        pytest.param("1MB", 1000**2, id="megabytes-decimal"),
        pytest.param("1.5 GiB", int(1.5 * 1024**3), id="fraction-with-space"),
        pytest.param("5GiB", 5 * 1024**3, id="gibibytes"),
        pytest.param(None, None, id="none-no-limit"),
        pytest.param("", None, id="empty-no-limit"),
    ],
)
def test_parse_size(value: object, expected: int | None) -> None:
    assert parse_size(value, "x") == expected


@pytest.mark.parametrize("value", [pytest.param("lots", id="word"), pytest.param(-1, id="negative")])
def test_parse_size_rejects(value: object) -> None:
    with pytest.raises(LogRotationConfigError, match="x"):
        parse_size(value, "x")


def _config(**log_set: object) -> dict[str, object]:
    spec = {"root": "/var/log/apps/web", "globs": ["*.log"], **log_set}
    return {"allowed_roots": ["/var/log/apps"], "defaults": {"min_size": "1KiB"}, "log_sets": {"web": spec}}


def test_defaults_merge_into_log_sets_and_round_trip() -> None:
    log_set = parse_log_sets(_config(compression="gzip", retention={"max_archives": 3}))["web"]
    assert log_set.min_size_bytes == 1024
    assert log_set.compression == "gzip"
    assert log_set.compression_level == 6
    assert log_set.retention.max_archives == 3
    assert log_set.warning_percent == 70
    assert log_set.critical_percent == 90
    assert log_set.channel == "compliance"
    assert log_set_from_dict(log_set.as_dict()) == log_set


@pytest.mark.parametrize(
    ("override", "message"),
    [
        pytest.param({"root": "/etc"}, "not under allowed_roots", id="root-outside"),
        pytest.param({"root": "relative/dir"}, "absolute directory", id="root-relative"),
        pytest.param({"globs": []}, "at least one file glob", id="no-globs"),
        pytest.param({"mode": "move"}, "not one of rename, copytruncate", id="bad-mode"),
        pytest.param({"compression": "bzip2"}, "not one of zstd, gzip", id="bad-compression"),
        pytest.param({"compression_level": 42}, "outside 1..19", id="bad-level"),
        pytest.param({"warning_percent": 95, "critical_percent": 90}, "warning_percent", id="thresholds"),
        pytest.param({"reopen": {"signal": "SIGNOPE"}}, "unknown signal", id="bad-signal"),
        pytest.param({"reopen": {"command": "kill -HUP 1"}}, "argv list", id="shell-command"),
        pytest.param({"archive_mode": "rw-r"}, "octal mode", id="bad-mode-bits"),
        pytest.param({"zstd_parameters": {"min_match": 2}}, "outside 3..7", id="zstd-min-match"),
        pytest.param({"zstd_parameters": {"strategy": "fastest"}}, "not one of", id="zstd-strategy"),
        pytest.param({"zstd_parameters": {"level": 3}}, "unknown", id="zstd-unknown-key"),
        pytest.param({"zstd_parameters": ["lazy"]}, "mapping", id="zstd-not-a-mapping"),
    ],
)
def test_bad_config_is_a_clear_error(override: dict[str, object], message: str) -> None:
    with pytest.raises(LogRotationConfigError, match=message):
        parse_log_sets(_config(**override))


def test_shipped_yaml_is_valid_and_matches_the_sop_defaults() -> None:
    config = read_defaults("log_rotation")
    log_sets = parse_log_sets(config)
    assert {"app", "order_processing"} <= set(log_sets)
    for log_set in log_sets.values():
        assert log_set.compression == "zstd"
        assert log_set.mode == "rename"
        assert (log_set.warning_percent, log_set.critical_percent) == (70, 90)
        assert log_set.channel == "compliance"


def test_shipped_compression_settings_round_trip_a_log(tmp_path: Path) -> None:
    """The YAML's tuned zstd parameters are accepted by zstd and give back the bytes (and survive XCom)."""
    log_set = parse_log_sets(read_defaults("log_rotation"))["app"]
    assert log_set.zstd_parameters["strategy"] == "lazy"
    assert log_set_from_dict(log_set.as_dict()) == log_set
    source = tmp_path / "app.log.20261122T043000Z.1"
    source.write_bytes(
        b"".join(f"10.0.{i % 256}.{i % 7} GET /api/orders/{i} 200 {i * 7 % 1000}ms\n".encode() for i in range(50_000))
    )
    archive = tmp_path / "app.log.20261122T043000Z.1.zst"
    done = compress.compress_verified(
        str(source),
        str(archive),
        level=log_set.compression_level,
        threads=log_set.compression_threads,
        zstd_parameters=log_set.zstd_parameters,
    )
    assert done.archive_bytes < source.stat().st_size // 5
    assert compress.archive_digest(str(archive)) == compress.file_digest(str(source))


@pytest.mark.parametrize(
    ("style", "kind", "tuned"),
    [
        pytest.param("json", "fast", True, id="json-lines-get-a-fast-zstd-level"),
        pytest.param("traces", "fast", True, id="stack-traces-get-a-fast-zstd-level"),
        pytest.param("orders", "fast", True, id="order-processor-gets-a-fast-zstd-level"),
        pytest.param("access", "tuned", True, id="access-logs-get-greedy-matching-not-the-slower-lazy-fallback"),
        pytest.param("syslog", "tuned", True, id="syslog-gets-greedy-matching-not-the-slower-lazy-fallback"),
        pytest.param("access", "gzip", False, id="without-greedy-access-logs-get-libdeflate-not-lazy"),
        pytest.param("syslog", "gzip", False, id="without-greedy-syslog-gets-libdeflate-not-lazy"),
    ],
)
def test_adaptive_compression_takes_the_cheapest_settings_that_beat_gzip(
    style: str, kind: str, tuned: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe picks the cheapest candidate, and what it picks on the sample stays no larger than gzip -6 on
    four times as much of the same log (the margin covers sample vs whole file)."""
    if not tuned:
        monkeypatch.setattr(compress, "ADAPTIVE_TUNED", ())
    lines = STYLES[style](random.Random(3), datetime(2026, 11, 21, tzinfo=UTC))
    text = bytearray()
    while len(text) < 4 * compress.ADAPTIVE_SAMPLE_BYTES:
        text += next(lines).encode()
    sample = bytes(text[: compress.ADAPTIVE_SAMPLE_BYTES])
    defaults = read_defaults("log_rotation")["defaults"]
    choice = compress.choose_compression(sample, defaults["compression_level"], defaults["zstd_parameters"])
    picked = {
        "fast": choice.compression == "zstd" and choice.level in compress.ADAPTIVE_LEVELS and not choice.parameters,
        "tuned": (choice.level, choice.parameters) in [(level, params) for level, params, _ in compress.ADAPTIVE_TUNED],
        "gzip": (choice.compression, choice.level) == ("gzip", compress.ADAPTIVE_GZIP_LEVEL),
    }
    assert picked[kind], choice.note
    data = bytes(text)
    if choice.compression == "gzip":
        step = compress.MEMBER_BYTES
        archive = b"".join(compress.gzip_member(data[i : i + step], choice.level) for i in range(0, len(data), step))
    else:
        archive = compress.zstd_compressor(choice.level, 0, choice.parameters).compress(data)
    assert len(archive) <= len(zlib.compress(data, 6))


def test_adaptive_compression_never_tries_costlier_settings_than_a_plain_low_level() -> None:
    """Configured plain zstd 3 (no tuned parameters): only zstd 1 and 2 may replace it, not libdeflate or the tuned
    greedy candidate, which cost more per byte than zstd 3."""
    lines = STYLES["access"](random.Random(3), datetime(2026, 11, 21, tzinfo=UTC))
    sample = bytearray()
    while len(sample) < compress.ADAPTIVE_SAMPLE_BYTES:
        sample += next(lines).encode()
    choice = compress.choose_compression(bytes(sample), 3, {})
    assert (choice.compression, choice.level, choice.parameters) == ("zstd", 3, {}), choice.note
