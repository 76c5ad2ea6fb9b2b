"""The active server's recent log lines: bounded, only under the allowed roots, secrets masked."""

from __future__ import annotations

from pathlib import Path

from toilless.sops.dns_failover.logs import recent_lines


def test_a_file_tail_is_bounded_in_bytes_and_lines(tmp_path: Path) -> None:
    log = tmp_path / "ns1.log"
    log.write_text("".join(f"line {n} password=hunter{n}\n" for n in range(10_000)))
    got = recent_lines({"log_file": str(log)}, allowed_roots=[str(tmp_path)], max_lines=5, max_bytes=4096)
    assert got["cut"] is True
    assert len(got["lines"]) == 5
    assert got["lines"][-1].startswith("line 9999")
    assert "hunter9999" not in got["lines"][-1]


def test_a_file_outside_the_roots_is_not_read(tmp_path: Path) -> None:
    got = recent_lines({"log_file": "/etc/passwd"}, allowed_roots=[str(tmp_path)], max_lines=5, max_bytes=4096)
    assert got["lines"] == []
    assert "outside the allowed directories" in got["error"]


def test_a_command_source_and_no_source(tmp_path: Path) -> None:
    got = recent_lines({"log_argv": ["printf", "a\\nb\\nc\\n"]}, allowed_roots=[], max_lines=2, max_bytes=4096)
    assert (got["lines"], got["cut"]) == (["b", "c"], True)
    assert recent_lines({}, allowed_roots=[], max_lines=2, max_bytes=10)["source"] is None
