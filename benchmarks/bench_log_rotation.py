"""log_rotation's engine against logrotate 3.x with ``compress`` (gzip -6), per log style and in total.

* Data: five styles the project did not write (benchmarks/log_rotation_corpus.py: nginx combined access log, JSON
  structured service log, Python + Java stack traces, syslog, the order processor), ``TOILLESS_BENCH_LOG_MIB``
  MiB each (default 256: the file size of the independent review's corpus, 1 GiB in 4 files; rotation speed matters
  for big logs, and 96 MiB files let the engine's fixed start-up cost weigh more than on any log that takes a second
  to compress), generated once and copied for each contender and round, so both start from identical
  bytes with a warm page cache.
* Ours: ``python -m toilless.sops.log_rotation`` (the engine the DAG's tasks run, process start included) in rename
  mode with the shipped compression settings (include/config/log_rotation.yaml): rotate, compress in independent
  members on two threads, each verified by decompressing it, read the archive back by CRC-32, fsync, remove.
* logrotate: ``logrotate -f -s <state> <conf>`` with ``compress`` (gzip -6, its default) and ``create``.
* Same work on both sides: rename, create the new live file, compress, fsync the archive (logrotate 3.21 fsyncs the
  .gz too, checked with strace), remove the rotated file. Ours also does, and is charged for: verification by
  decompressing every member, CRC-32 of source and archive, fsync of the directory, the scan for writers still
  holding the file, the 1 MiB probe, and its interpreter's start (from cached bytecode, as installed; see
  ``_engine_env``). The probe's choice is remembered per log in the engine's state directory, which the rounds
  share, as a daily rotation's runs do: the first round of each contest probes, the others reuse its choice.
* Rounds: ours and logrotate alternate (``ROUNDS`` each), first the whole corpus as one log set, then each style
  alone; medians are reported. Other work on the machine slows both alike this way; the load average is noted.
* Memory: peak RSS (``wait4`` rusage of that one process) of the engine rotating the whole corpus; with
  ``TOILLESS_BENCH_BIG_GIB=5`` also of one 5 GiB file (opt-in: writing it takes a while).

CPU time (user + sys of the child and its children) is reported beside wall time because it depends less on what
else the machine runs.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.log_rotation_corpus import FILE_NAMES, STYLES, write_style
from toilless.common.config import read_defaults

REPO = Path(__file__).resolve().parents[1]
MIB = 1 << 20
STYLE_BYTES = int(os.environ.get("TOILLESS_BENCH_LOG_MIB", "256")) * MIB
BIG_FILE_GIB = float(os.environ.get("TOILLESS_BENCH_BIG_GIB", "0"))
ROUNDS = int(os.environ.get("TOILLESS_BENCH_LOG_ROUNDS", "3"))
GOAL_SPEEDUP = 4.0
GOAL_SIZE_RATIO = 1.0
GOAL_PEAK_MB = 100.0


#: Runs the command from a small, fresh process and reports its RUSAGE_CHILDREN: a child's ru_maxrss counts the RSS
#: it had between fork and exec, i.e. its parent's. Forked from this (large) benchmark process it would report ours.
_LAUNCHER = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
wall = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"code": code.returncode, "stderr": code.stderr.decode()[-2000:], "wall": wall,
                  "cpu": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024}))
"""


def _timed(argv: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Run ``argv``: wall seconds, CPU seconds (it and its children, e.g. logrotate's gzip) and peak RSS in MB."""
    launched = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *argv], env=env, capture_output=True, text=True, check=True
    )
    result = json.loads(launched.stdout)
    if result["code"] != 0:
        raise RuntimeError(f"{argv[:3]} exited {result['code']}: {result['stderr']}")
    return result


def _engine_argv(config: Path) -> list[str]:
    return [sys.executable, "-m", "toilless.sops.log_rotation", "--config", str(config), "--no-measure"]


def _engine_env(work: Path) -> dict[str, str]:
    """The engine's environment, with Python's bytecode cache on (in ``work``, not the repo): an installed engine
    runs from cached bytecode, and with ``PYTHONDONTWRITEBYTECODE`` set (as in CI shells) every run would compile
    its modules again, ~55 ms of CPU per run that logrotate has no counterpart for. The first run fills the cache;
    medians are of warm runs."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)])}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return env


def shipped_compression() -> dict[str, Any]:
    """The compression settings a log set gets by default (include/config/log_rotation.yaml)."""
    defaults = read_defaults("log_rotation")["defaults"]
    return {
        key: defaults.get(key)
        for key in (
            "compression",
            "compression_level",
            "compression_threads",
            "zstd_parameters",
            "adaptive_compression",
        )
        if defaults.get(key) is not None
    }


def _engine_config(root: Path, work: Path, globs: list[str]) -> Path:
    config = {
        "allowed_roots": [str(root)],
        "state_dir": str(work / "state"),
        "log_sets": {
            "bench": {
                "root": str(root),
                "globs": globs,
                "min_size": 1,
                **shipped_compression(),
                "reopen": {"timeout_seconds": 0},
            }
        },
    }
    path = work / f"engine-{root.name}.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def _logrotate_config(root: Path, work: Path, names: list[str]) -> Path:
    path = work / f"logrotate-{root.name}.conf"
    targets = " ".join(str(root / name) for name in names)
    path.write_text(f"{targets} {{\n    rotate 30\n    compress\n    create\n    missingok\n}}\n", encoding="utf-8")
    path.chmod(0o644)  # logrotate refuses a config others may write
    return path


def _archive_sizes(root: Path, suffixes: tuple[str, ...]) -> dict[str, int]:
    """Archive bytes per live file name."""
    sizes: dict[str, int] = {}
    for entry in root.iterdir():
        if entry.name.endswith(suffixes):
            live = next(name for name in FILE_NAMES.values() if entry.name.startswith(name + "."))
            sizes[live] = sizes.get(live, 0) + entry.stat().st_size
    return sizes


def _fresh(source: Path, target: Path, names: list[str]) -> None:
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(mode=0o755, parents=True)
    for name in names:
        shutil.copyfile(source / name, target / name)


def _contest(logrotate: str, source: Path, work: Path, names: list[str], label: str) -> dict[str, Any]:
    """``ROUNDS`` alternating runs of ours and logrotate on ``names``: medians and the archive sizes."""
    ours_dir, theirs_dir = work / f"ours-{label}", work / f"logrotate-{label}"
    mine: list[dict[str, float]] = []
    theirs: list[dict[str, float]] = []
    ours_sizes: dict[str, int] = {}
    theirs_sizes: dict[str, int] = {}
    for round_number in range(ROUNDS):
        # Alternate who goes first, so neither always runs right after the copy (page cache, CPU boost).
        order = ("ours", "logrotate") if round_number % 2 == 0 else ("logrotate", "ours")
        for contender in order:
            if contender == "ours":
                _fresh(source, ours_dir, names)
                mine.append(_timed(_engine_argv(_engine_config(ours_dir, work, names)), env=_engine_env(work)))
                # Adaptive compression writes .zst or .gz (libdeflate members) per file.
                ours_sizes = _archive_sizes(ours_dir, (".zst", ".gz"))
            else:
                _fresh(source, theirs_dir, names)
                state = work / f"logrotate-{label}.state"
                state.unlink(missing_ok=True)
                theirs.append(
                    _timed([logrotate, "-f", "-s", str(state), str(_logrotate_config(theirs_dir, work, names))])
                )
                theirs_sizes = _archive_sizes(theirs_dir, (".gz",))
    for directory in (ours_dir, theirs_dir):
        shutil.rmtree(directory, ignore_errors=True)
    if set(ours_sizes) != set(names) or set(theirs_sizes) != set(names):
        raise RuntimeError(f"missing archives: ours {sorted(ours_sizes)}, logrotate {sorted(theirs_sizes)}")

    def median(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(run[key] for run in runs)

    return {
        "ours_wall": median(mine, "wall"),
        "theirs_wall": median(theirs, "wall"),
        "ours_cpu": median(mine, "cpu"),
        "theirs_cpu": median(theirs, "cpu"),
        "ours_peak_mb": max(run["peak_mb"] for run in mine),
        "ours_bytes": sum(ours_sizes.values()),
        "theirs_bytes": sum(theirs_sizes.values()),
    }


def _row(metric: str, contest: dict[str, Any], source_bytes: int, note: str) -> dict[str, Any]:
    speedup = contest["theirs_wall"] / contest["ours_wall"]
    size_ratio = contest["ours_bytes"] / contest["theirs_bytes"]
    return {
        "benchmark": "log_rotation",
        "metric": metric,
        "value": (
            f"wall {speedup:.1f}x ({contest['theirs_wall']:.2f} s vs {contest['ours_wall']:.2f} s); size "
            f"{size_ratio:.3f} ({contest['ours_bytes'] / MIB:.1f} MiB vs {contest['theirs_bytes'] / MIB:.1f} MiB)"
        ),
        "goal": f"wall >= {GOAL_SPEEDUP:g}x, size <= {GOAL_SIZE_RATIO:g}",
        "met": speedup >= GOAL_SPEEDUP and size_ratio <= GOAL_SIZE_RATIO,
        "notes": (
            f"{source_bytes / MIB:.0f} MiB; CPU {contest['theirs_cpu']:.2f} s vs {contest['ours_cpu']:.2f} s = "
            f"{contest['theirs_cpu'] / contest['ours_cpu']:.1f}x; {note}"
        ),
        "speedup": speedup,
        "size_ratio": size_ratio,
    }


def run(work: Path) -> list[dict[str, Any]]:
    logrotate = shutil.which("logrotate") or "/usr/sbin/logrotate"
    if not Path(logrotate).exists():
        raise RuntimeError("logrotate is not installed (Debian package logrotate)")
    version = subprocess.run([logrotate, "--version"], capture_output=True, text=True, check=False)
    version_line = (version.stdout or version.stderr).splitlines()[0]
    source = work / "source"
    source.mkdir(mode=0o755, parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    # Fill the engine's bytecode cache once, untimed (see _engine_env).
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(REPO / "plugins" / "toilless")],
        env=_engine_env(work),
        check=True,
    )
    try:
        generated = {style: write_style(source / FILE_NAMES[style], style, STYLE_BYTES) for style in STYLES}
        names = [FILE_NAMES[style] for style in STYLES]
        total = _contest(logrotate, source, work, names, "all")
        per_style = {style: _contest(logrotate, source, work, [FILE_NAMES[style]], style) for style in STYLES}
        big = _big_file_peak(work, source) if BIG_FILE_GIB else None
    finally:
        shutil.rmtree(source, ignore_errors=True)
        shutil.rmtree(work / "big", ignore_errors=True)
    load_after = os.getloadavg()[0]
    settings = shipped_compression()
    loaded = f"load average {load_before:.1f} → {load_after:.1f} on {os.cpu_count()} cores" + (
        " (machine shared with other work: loaded)" if max(load_before, load_after) > 1.5 else ""
    )
    common = f"{version_line} compress (gzip -6) vs ours ({_describe(settings)}, verified); medians of {ROUNDS} alternating rounds; {loaded}"
    rows = [_row("rotation, all styles together", total, sum(generated.values()), common)]
    rows += [
        _row(f"rotation, {style} ({FILE_NAMES[style]})", per_style[style], generated[style], "same") for style in STYLES
    ]
    worst_speed = min(row["speedup"] for row in rows[1:])
    worst_size = max(row["size_ratio"] for row in rows[1:])
    rows.append(
        {
            "benchmark": "log_rotation",
            "metric": "worst style",
            "value": f"wall {worst_speed:.1f}x, size {worst_size:.3f}",
            "goal": f"wall >= {GOAL_SPEEDUP:g}x, size <= {GOAL_SIZE_RATIO:g}",
            "met": worst_speed >= GOAL_SPEEDUP and worst_size <= GOAL_SIZE_RATIO,
            "notes": "each style rotated alone (process start included, which weighs more on one file than on five)",
        }
    )
    peak = total["ours_peak_mb"]
    rows.append(
        {
            "benchmark": "log_rotation",
            "metric": "peak RSS of the engine" + (f", one {BIG_FILE_GIB:g} GiB file" if big else ", whole corpus"),
            "value": f"{(big or {}).get('peak_mb', peak):.0f} MB",
            "goal": f"< {GOAL_PEAK_MB:g} MB",
            "met": (big or {}).get("peak_mb", peak) < GOAL_PEAK_MB,
            "notes": (
                f"whole engine process incl. Python; {big['wall']:.1f} s wall, archive {big['archive'] / MIB:.0f} MiB"
                if big
                else "streaming: memory does not grow with file size; TOILLESS_BENCH_BIG_GIB=5 measures one 5 GiB file"
            ),
        }
    )
    for row in rows:
        row.pop("speedup", None)
        row.pop("size_ratio", None)
    return rows


def _describe(settings: dict[str, Any]) -> str:
    parameters = settings.get("zstd_parameters") or {}
    tuned = ", ".join(f"{key} {value}" for key, value in parameters.items())
    return (
        f"{settings.get('compression', 'zstd')} level {settings.get('compression_level')}"
        + (f" with {tuned}" if tuned else "")
        + f", {settings.get('compression_threads', 0)} threads"
        + (
            ", adaptive per file: zstd 1/2 where a 1 MiB sample beats gzip -6 by 3 %, greedy zstd 5 (8, then 16"
            " probes), else gzip by libdeflate 6, where by 1.5 %; the choice remembered per log (state directory:"
            " round 1 probes, later rounds reuse it); independent 4 MiB members compressed and verified on the"
            " threads"
            if settings.get("adaptive_compression")
            else ""
        )
    )


def _big_file_peak(work: Path, source: Path) -> dict[str, Any]:
    """Peak RSS of the engine rotating one ``BIG_FILE_GIB`` GiB log (the corpus repeated; memory does not depend
    on content)."""
    directory = work / "big"
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    big = directory / "big.log"
    target = int(BIG_FILE_GIB * (1 << 30))
    chunks = [(source / name).read_bytes()[: 64 * MIB] for name in sorted(os.listdir(source))]
    with big.open("wb") as handle:
        written = 0
        while written < target:
            for chunk in chunks:
                piece = chunk[: target - written]
                handle.write(piece)
                written += len(piece)
                if written >= target:
                    break
    del chunks
    measured = _timed(_engine_argv(_engine_config(directory, work, [big.name])), env=_engine_env(work))
    archive = sum(entry.stat().st_size for entry in directory.iterdir() if entry.name.endswith((".zst", ".gz")))
    return {**measured, "archive": archive}
