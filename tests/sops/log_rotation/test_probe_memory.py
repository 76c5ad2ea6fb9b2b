"""The adaptive probe's choice is remembered per log in the state directory and reused by the next rotations,
until it is a week old, the settings change, or a file compresses unlike the probed one."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from benchmarks.log_rotation_corpus import STYLES
from toilless.common.config import read_defaults
from toilless.sops.log_rotation import compress, engine, probe_memory
from toilless.sops.log_rotation.settings import parse_log_sets

NOW = datetime(2026, 11, 22, 4, 30, tzinfo=UTC)


def corpus(style: str, size: int, seed: int = 5) -> bytes:
    lines = STYLES[style](random.Random(seed), datetime(2026, 11, 21, tzinfo=UTC))
    text = bytearray()
    while len(text) < size:
        text += next(lines).encode()
    return bytes(text)


def shipped_log_set(root: Path, **overrides: object) -> Any:
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


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the probes the engine runs (each call of choose_compression)."""
    calls: list[int] = []
    real = compress.choose_compression

    def counted(sample: bytes, *args: Any, **kwargs: Any) -> compress.CompressionChoice:
        calls.append(len(sample))
        return real(sample, *args, **kwargs)

    monkeypatch.setattr(compress, "choose_compression", counted)
    return calls


def rotate(root: Path, state: Path, data: bytes, now: datetime, **overrides: object) -> dict[str, Any]:
    (root / "app.log").write_bytes(data)
    result = engine.rotate_log_set(shipped_log_set(root, **overrides), state_dir=state, now=now)
    assert not result["errors"], result["errors"]
    [done] = result["compressed"]
    return done


def test_the_next_rotation_of_a_log_reuses_the_probe_s_choice(tmp_path: Path, probes: list[int]) -> None:
    root, state = tmp_path / "logs", tmp_path / "state"
    root.mkdir()
    first = rotate(root, state, corpus("json", 4 * compress.ADAPTIVE_SAMPLE_BYTES), NOW)
    assert len(probes) == 1
    second = rotate(root, state, corpus("json", 4 * compress.ADAPTIVE_SAMPLE_BYTES, seed=6), NOW + timedelta(days=1))
    assert len(probes) == 1, "the second rotation probed again"
    assert second["settings"].startswith(first["settings"].split(" (")[0])
    assert "as probed 2026-11-22" in second["settings"]
    assert second["archive"].endswith(".zst")


@pytest.mark.parametrize(
    ("later", "overrides"),
    [
        pytest.param(timedelta(days=7), {}, id="a-week-later"),
        pytest.param(timedelta(days=1), {"compression_level": 7}, id="after-the-settings-changed"),
        pytest.param(timedelta(days=-1), {}, id="when-the-clock-went-back"),
    ],
)
def test_the_probe_runs_again(
    tmp_path: Path, probes: list[int], later: timedelta, overrides: dict[str, object]
) -> None:
    root, state = tmp_path / "logs", tmp_path / "state"
    root.mkdir()
    rotate(root, state, corpus("json", 4 * compress.ADAPTIVE_SAMPLE_BYTES), NOW)
    done = rotate(root, state, corpus("json", 4 * compress.ADAPTIVE_SAMPLE_BYTES, seed=6), NOW + later, **overrides)
    assert len(probes) == 2
    assert "as probed" not in done["settings"]


def test_a_file_that_compresses_unlike_the_probed_one_makes_the_next_rotation_probe(
    tmp_path: Path, probes: list[int]
) -> None:
    """JSON lines, then a log that became access lines (compresses differently): that file still gets the
    remembered settings, but the next one is probed again, and gets what suits access logs."""
    root, state = tmp_path / "logs", tmp_path / "state"
    root.mkdir()
    rotate(root, state, corpus("json", 4 * compress.ADAPTIVE_SAMPLE_BYTES), NOW)
    changed = rotate(root, state, corpus("access", 4 * compress.ADAPTIVE_SAMPLE_BYTES), NOW + timedelta(days=1))
    assert "as probed" in changed["settings"]
    assert str(root / "app.log") not in probe_memory.load(probe_memory.memory_file(state, "web"))
    reprobed = rotate(root, state, corpus("access", 4 * compress.ADAPTIVE_SAMPLE_BYTES, 6), NOW + timedelta(days=2))
    assert len(probes) == 2
    assert "greedy" in reprobed["settings"]
    assert "as probed" not in reprobed["settings"]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"web": {"/logs/app.log": {"choice"', id="torn"),
        pytest.param(b"[1, 2]", id="not-a-mapping"),
        pytest.param(b'{"LIVE": {"key": "KEY", "probed_at": "yesterday", "choice": {}}}', id="foreign-entry"),
    ],
)
def test_an_unreadable_memory_only_costs_a_probe(tmp_path: Path, probes: list[int], content: bytes) -> None:
    root, state = tmp_path / "logs", tmp_path / "state"
    root.mkdir()
    state.mkdir()
    live = str(root / "app.log")
    log_set = shipped_log_set(root)
    key = compress.probe_key(log_set.compression_level, log_set.zstd_parameters)
    memory_file = probe_memory.memory_file(state, "web")
    memory_file.write_bytes(content.replace(b"LIVE", live.encode()).replace(b"KEY", json.dumps(key).encode()[1:-1]))
    done = rotate(root, state, corpus("json", 4 * compress.ADAPTIVE_SAMPLE_BYTES), NOW)
    assert len(probes) == 1
    assert "as probed" not in done["settings"]
    assert probe_memory.load(memory_file)[live]["probed_at"] == NOW.isoformat()


def test_small_files_and_plain_settings_leave_no_memory(tmp_path: Path, probes: list[int]) -> None:
    root, state = tmp_path / "logs", tmp_path / "state"
    root.mkdir()
    rotate(root, state, corpus("json", compress.ADAPTIVE_SAMPLE_BYTES), NOW)  # under 4 MiB: never probed
    rotate(root, state, corpus("json", 4 * compress.ADAPTIVE_SAMPLE_BYTES), NOW, adaptive_compression=False)
    assert probes == []
    assert not probe_memory.memory_file(state, "web").exists()


def test_the_memory_stays_bounded(tmp_path: Path) -> None:
    """A log set matching thousands of files keeps the newest entries only."""
    memory: dict[str, Any] = {}
    choice = compress.CompressionChoice("zstd", 1, {}, "zstd 1")
    for number in range(probe_memory.MAX_ENTRIES + 5):
        probe_memory.remember(memory, f"/l/{number}.log", "k", choice, 0.1, NOW + timedelta(seconds=number))
    path = probe_memory.memory_file(tmp_path, "web")
    probe_memory.save(path, memory)
    saved = probe_memory.load(path)
    assert len(saved) == probe_memory.MAX_ENTRIES
    assert "/l/0.log" not in saved
    assert f"/l/{probe_memory.MAX_ENTRIES + 4}.log" in saved
    assert [entry.name for entry in tmp_path.iterdir()] == [path.name]  # no temporary left
