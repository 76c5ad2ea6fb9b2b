"""order_backlog_check against hostile log files: what it reads, keeps and posts stays bounded and inside its roots.

Each test is an attack the README's safety promise must survive: a compressed rotated log that inflates to hundreds
of MiB, a rotated sibling that is a symlink out of the allowed roots, a million distinct error numbers, a 5 MB line,
Slack markup and secrets in log lines.
"""

from __future__ import annotations

import gzip
import json
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zstandard

from toilless.sops.order_backlog_check.capacity import Capacity, assess_capacity
from toilless.sops.order_backlog_check.log_files import read_latest_run
from toilless.sops.order_backlog_check.log_parsing import summarize_run
from toilless.sops.order_backlog_check.messages import developers_message, outcome_report
from toilless.sops.order_backlog_check.settings import resolve_settings
from toilless.sops.order_backlog_check.verdict import Backlog, Thresholds, classify

MiB = 1 << 20
LOG = "order_processing.log"
#: What one run summary may cost in XCom, whatever the log holds.
XCOM_BOUND = 64 * 1024


def _settings(root: Path, **log: Any) -> dict[str, Any]:
    from toilless.common.config import read_defaults

    config = read_defaults("order_backlog_check")
    config["log"].update({"path": str(root / LOG), "allowed_roots": [str(root)], **log})
    return resolve_settings(config, read_defaults("toilless"), {})


def _summary(root: Path, **log: Any) -> dict[str, Any]:
    from toilless.sops.order_backlog_check.steps import read_processor_run

    return read_processor_run(_settings(root, **log)).as_dict()


def _developers(run: dict[str, Any], root: Path) -> dict[str, Any]:
    from datetime import datetime

    from toilless.sops.order_backlog_check.log_parsing import RunSummary

    summary = RunSummary.from_dict(run)
    now = (summary.last_line_at or datetime.fromisoformat("2026-11-23T10:00:00+00:00")).replace(microsecond=0)
    backlog = Backlog(outstanding=40, oldest_created_at=None)
    assessment = assess_capacity(Capacity(), 40, summary)
    verdict = classify(summary, backlog, assessment, Thresholds(), Capacity(), now)
    diagnosis = {"verdict": verdict.as_dict(), "capacity": assessment.as_dict()}
    return developers_message(diagnosis, {"outstanding": 40, "oldest_age_minutes": 30}, run, _settings(root))


def _assert_within_slack_limits(message: dict[str, Any]) -> None:
    assert len(message["text"]) <= 40_000
    assert len(message["blocks"]) <= 50
    for block in message["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150


# -- #5: compressed logs are read as bounded streams -----------------------------------------------------------
def _filler_block() -> bytes:
    lines = [f"2026-11-23 08:{index % 60:02d}:00,000 INFO Processing Order {index}\n" for index in range(400)]
    return "".join(lines).encode()


def _inflating_lines(total_bytes: int) -> Iterator[bytes]:
    """``total_bytes`` of plausible log text, then the run's start near the end (what the reader must find)."""
    block = _filler_block()
    for _ in range(total_bytes // len(block)):
        yield block
    yield b"2026-11-23 09:00:00,000 INFO Startup...\n2026-11-23 09:00:01,000 INFO Processing Order 4\n"
    yield b"2026-11-23 09:00:13,000 INFO Order Processed\n"


def _write_compressed(path: Path, kind: str, total_bytes: int) -> None:
    # Streaming compression: the test never holds the inflated text either.
    if kind == "gz":
        with gzip.open(path, "wb", compresslevel=1) as handle:
            for chunk in _inflating_lines(total_bytes):
                handle.write(chunk)
    else:
        with path.open("wb") as raw, zstandard.ZstdCompressor(level=1).stream_writer(raw) as writer:
            for chunk in _inflating_lines(total_bytes):
                writer.write(chunk)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(f"{LOG}.1.gz", id="gzip"),
        pytest.param("order_processing.20261123T085500Z.1.log.zst", id="zstd"),
    ],
)
def test_order_backlog_huge_compressed_log_is_read_with_bounded_memory(tmp_path: Path, name: str) -> None:
    inflated = 300 * MiB
    (tmp_path / LOG).write_text("2026-11-23 09:00:14,000 INFO All Orders processed.\n")
    _write_compressed(tmp_path / name, "gz" if name.endswith(".gz") else "zst", inflated)
    assert (tmp_path / name).stat().st_size < inflated // 10  # it really is a small file that inflates

    tracemalloc.start()
    try:
        read = read_latest_run(tmp_path / LOG, allowed_roots=[str(tmp_path)], max_files=5, max_bytes=2 * MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # Old code: the whole 300 MiB inflated in memory before being cut to max_bytes.
    assert peak < 32 * MiB, f"peak {peak / MiB:.1f} MiB while reading a log of {inflated / MiB:.0f} MiB"
    # The newest part of the rotated file is what matters: the run's start near its end was found.
    assert read.found_startup
    assert read.lines[0].endswith("Startup...")
    assert read.lines[-1].endswith("All Orders processed.")
    assert sum(len(line) + 1 for line in read.lines) <= 2 * MiB


def test_order_backlog_inflation_beyond_the_scan_limit_is_refused_and_said(tmp_path: Path) -> None:
    (tmp_path / LOG).write_text("2026-11-23 09:00:14,000 INFO All Orders processed.\n")
    _write_compressed(tmp_path / f"{LOG}.1.gz", "gz", 40 * MiB)
    read = read_latest_run(
        tmp_path / LOG, allowed_roots=[str(tmp_path)], max_files=5, max_bytes=MiB, max_decompressed_bytes=8 * MiB
    )
    assert not read.found_startup
    assert read.lines == ["2026-11-23 09:00:14,000 INFO All Orders processed."]
    assert any("8 MiB" in note and f"{LOG}.1.gz" in note for note in read.notes), read.notes


# -- #6: every file read passes the same path check -------------------------------------------------------------
SECRET = "2026-11-23 09:00:00,000 INFO Startup...\n2026-11-23 09:00:05,000 INFO db=postgresql://u:TOPSECRET@x/y\n"


@pytest.mark.parametrize(
    "sibling",
    [
        pytest.param(f"{LOG}.1", id="numbered"),
        pytest.param(f"{LOG}.2.gz", id="numbered-gz"),
        pytest.param("order_processing.20261123T085500Z.1.log.zst", id="archive-zst"),
    ],
)
def test_order_backlog_symlinked_sibling_outside_the_roots_is_never_read(tmp_path: Path, sibling: str) -> None:
    root = tmp_path / "logs"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / LOG).write_text("2026-11-23 09:10:00,000 INFO Processing Order 9\n")
    target = outside / "secret"
    if sibling.endswith(".gz"):
        target.write_bytes(gzip.compress(SECRET.encode()))
    elif sibling.endswith(".zst"):
        target.write_bytes(zstandard.ZstdCompressor().compress(SECRET.encode()))
    else:
        target.write_text(SECRET)
    (root / sibling).symlink_to(target)

    run = _summary(root)

    dumped = json.dumps(run)
    assert "TOPSECRET" not in dumped
    assert "postgresql" not in dumped
    assert not run["found_startup"]
    assert run["sources"] == [str(root / LOG)]
    assert any(sibling in note and "outside the allowed" in note for note in run["notes"]), run["notes"]


def test_order_backlog_symlink_inside_the_root_is_still_read(tmp_path: Path) -> None:
    (tmp_path / LOG).write_text("2026-11-23 09:10:00,000 INFO Order Processed\n")
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "older").write_text("2026-11-23 09:00:00,000 INFO Startup...\n")
    (tmp_path / f"{LOG}.1").symlink_to(tmp_path / "kept" / "older")
    run = _summary(tmp_path)
    assert run["found_startup"]
    assert run["orders_processed"] == 1


def test_order_backlog_sibling_that_is_a_fifo_does_not_hang_the_read(tmp_path: Path) -> None:
    (tmp_path / LOG).write_text("2026-11-23 09:10:00,000 INFO Processing Order 9\n")
    os.mkfifo(tmp_path / f"{LOG}.1")
    run = _summary(tmp_path)
    assert run["sources"] == [str(tmp_path / LOG)]


# -- #7: every summary, XCom and message is bounded and says what was cut ----------------------------------------
def test_order_backlog_million_distinct_errors_give_a_bounded_xcom(tmp_path: Path) -> None:
    distinct = 1_000_000
    with (tmp_path / LOG).open("w") as handle:
        handle.write("2026-11-23 09:00:00,000 INFO Startup...\n2026-11-23 09:00:01,000 INFO Processing Order 7\n")
        for number in range(distinct):
            handle.write(f"2026-11-23 09:00:02,000 ERROR Error Processing Order 7. Error #{number}\n")

    run = _summary(tmp_path, max_bytes=128 * MiB)  # the whole crafted log is read

    assert len(json.dumps(run)) < XCOM_BOUND  # old code: 14.9 MB for this log
    assert run["error_count"] == distinct
    assert len(run["errors"]) <= 20
    assert run["errors_not_listed"] == distinct - sum(run["errors"].values())
    assert run["errors_distinct"] >= 1000
    message = _developers(run, tmp_path)
    _assert_within_slack_limits(message)
    assert "not listed" in message["text"]


def test_order_backlog_5mb_line_is_cut_in_xcom_and_slack(tmp_path: Path) -> None:
    huge = "2026-11-23 09:00:03,000 ERROR Error Processing Order 7. Error #5 " + "A" * (5 * 1000 * 1000)
    lines = [
        "2026-11-23 09:00:00,000 INFO Startup...",
        "2026-11-23 09:00:01,000 INFO Processing Order 7",
        huge,
        huge,
        huge,
    ]
    (tmp_path / LOG).write_text("\n".join(lines) + "\n")

    run = _summary(tmp_path)

    assert len(json.dumps(run)) < XCOM_BOUND
    assert all(len(line) <= 1000 for line in run["excerpt"] + run["error_excerpt"])
    assert any("characters cut" in line for line in run["excerpt"])
    message = _developers(run, tmp_path)
    _assert_within_slack_limits(message)
    assert "characters cut" in message["text"]


def test_order_backlog_huge_order_id_and_error_number_are_bounded(tmp_path: Path) -> None:
    order = "O" * 2_000_000
    code = "9" * 2_000_000
    lines = ["2026-11-23 09:00:00,000 INFO Startup...", f"2026-11-23 09:00:01,000 INFO Processing Order {order}"]
    lines += [f"2026-11-23 09:00:02,000 ERROR Error Processing Order {order}. Error #{code}"] * 3
    (tmp_path / LOG).write_text("\n".join(lines) + "\n")

    run = _summary(tmp_path)

    assert len(json.dumps(run)) < XCOM_BOUND
    assert len(run["tail_error_order"]) <= 64
    assert len(run["tail_error_code"]) <= 64
    assert run["tail_error_repeats"] == 3
    _assert_within_slack_limits(_developers(run, tmp_path))


def test_order_backlog_secrets_in_log_lines_are_masked(tmp_path: Path) -> None:
    lines = [
        "2026-11-23 09:00:00,000 INFO Startup...",
        "2026-11-23 09:00:01,000 INFO Processing Order 7",
        "2026-11-23 09:00:02,000 ERROR Error Processing Order 7. Error #3 postgresql://orders:S3cr3tPw@db:5432/orders",
        "2026-11-23 09:00:03,000 ERROR Error Processing Order 7. Error #3 Authorization: Bearer abcdefghijkl0123",
        "2026-11-23 09:00:04,000 ERROR Error Processing Order 7. Error #3 password=hunter2hunter2",
    ]
    (tmp_path / LOG).write_text("\n".join(lines) + "\n")

    run = _summary(tmp_path)
    message = _developers(run, tmp_path)

    for secret in ("S3cr3tPw", "abcdefghijkl0123", "hunter2hunter2"):
        assert secret not in json.dumps(run)
        assert secret not in json.dumps(message)


def test_order_backlog_slack_markup_in_log_lines_is_inert(tmp_path: Path) -> None:
    lines = [
        "2026-11-23 09:00:00,000 INFO Startup...",
        "2026-11-23 09:00:01,000 INFO Processing Order 7",
        "2026-11-23 09:00:02,000 ERROR Error Processing Order 7. Error #3 <!channel> ```<https://evil.example|login>",
    ] + ["2026-11-23 09:00:02,000 ERROR Error Processing Order 7. Error #3"] * 2
    (tmp_path / LOG).write_text("\n".join(lines) + "\n")
    (tmp_path / f"{LOG}.1").write_text("")

    run = _summary(tmp_path)
    message = _developers(run, tmp_path)

    dumped = json.dumps(message)
    assert "<!channel>" not in dumped
    assert "<https://evil" not in dumped
    for block in message["blocks"][2:]:
        # One code block per excerpt: the log cannot close it early and turn into markup.
        assert block["text"]["text"].count("```") in (0, 2)


def test_order_backlog_outcome_report_escapes_outside_text(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    diagnosis = {
        "verdict": {
            "verdict": "stuck",
            "reasons": ["<!here> " + "x" * 10_000],
            "incident_key": "stuck:order-7:error-3",
            "stuck_order": "<!channel>",
            "restartable": True,
        },
        "capacity": {},
    }
    restart = {"restarted": False, "reason": "<https://evil.example|click> " + "y" * 10_000, "already_done": True}
    outcome = outcome_report(diagnosis, {"outstanding": 4}, restart, None, settings)
    dumped = json.dumps(outcome)
    assert "<!here>" not in dumped
    assert "<!channel>" not in dumped
    assert "<https://evil" not in dumped
    assert all(len(line) <= 1200 for line in outcome["lines"])
    assert len(outcome["escalation_text"]) <= 1500


def test_order_backlog_summary_of_an_ordinary_run_is_unchanged(tmp_path: Path) -> None:
    lines = [
        "2026-11-23 09:00:00,000 INFO Startup...",
        "2026-11-23 09:00:01,000 INFO Processing Order 7",
        "2026-11-23 09:00:02,000 ERROR Error Processing Order 7. Error #3",
        "2026-11-23 09:00:03,000 INFO Order 7 Processed",
    ]
    summary = summarize_run(lines, found_startup=True)
    assert summary.errors == {"7/3": 1}
    assert summary.errors_not_listed == 0
    assert summary.excerpt == lines
