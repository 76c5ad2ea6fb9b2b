"""log_rotation's engine against logrotate 3.x with ``compress`` (gzip), on the same ~1 GiB of realistic logs.

* Data: app.log (768 MiB) and order_processing.log (256 MiB) from sandbox/logdata.py, generated once and copied
  for each contender, so both start from identical bytes with a warm page cache.
* Ours: ``python -m toilless.logrotation`` (the engine the DAG's tasks run) in rename mode with the shipped default
  compression (include/config/log_rotation.yaml): rotate, stream-compress, fsync, verify by decompressing, remove.
* logrotate: ``logrotate -f -s <state> <conf>`` with ``compress`` (gzip -6, its default) and ``create``.
* Memory: peak RSS (``wait4`` rusage of that one process) of the engine rotating a single 5 GiB file.

Wall time depends on what else the machine runs; CPU time (user + sys of the child and its children) is reported
beside it because it does not.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from sandbox.logdata import write_log
from toilless.config import read_defaults

REPO = Path(__file__).resolve().parents[1]
MIB = 1 << 20
FILES = {"app.log": ("app", 768 * MIB), "order_processing.log": ("orders", 256 * MIB)}
BIG_FILE_BYTES = 5 << 30
GOAL_SPEEDUP = 3.0
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
    return [sys.executable, "-m", "toilless.logrotation", "--config", str(config), "--no-measure"]


def _engine_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)])}


def _engine_config(root: Path, work: Path, globs: list[str]) -> Path:
    defaults = read_defaults("log_rotation")["defaults"]
    config = {
        "allowed_roots": [str(root)],
        "state_dir": str(work / "state"),
        "log_sets": {
            "bench": {
                "root": str(root),
                "globs": globs,
                "min_size": 1,
                "compression": defaults["compression"],
                "compression_level": defaults.get("compression_level"),
                "compression_threads": defaults.get("compression_threads", 0),
                "reopen": {"timeout_seconds": 0},
            }
        },
    }
    path = work / f"engine-{root.name}.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def _logrotate_config(root: Path, work: Path) -> Path:
    path = work / "logrotate.conf"
    targets = " ".join(str(root / name) for name in FILES)
    path.write_text(f"{targets} {{\n    rotate 30\n    compress\n    create\n    missingok\n}}\n", encoding="utf-8")
    path.chmod(0o644)  # logrotate refuses a config others may write
    return path


def _sizes(root: Path, suffix: str) -> int:
    return sum(entry.stat().st_size for entry in root.iterdir() if entry.name.endswith(suffix))


def run(work: Path) -> list[dict[str, Any]]:
    logrotate = shutil.which("logrotate") or "/usr/sbin/logrotate"
    if not Path(logrotate).exists():
        raise RuntimeError("logrotate is not installed (Debian package logrotate)")
    version = subprocess.run([logrotate, "--version"], capture_output=True, text=True, check=False)
    version_line = (version.stdout or version.stderr).splitlines()[0]
    source, ours, theirs = work / "source", work / "ours", work / "logrotate"
    for directory in (source, ours, theirs):
        directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    try:
        generated = sum(write_log(source / name, kind, size, seed=7) for name, (kind, size) in FILES.items())
        for name in FILES:
            shutil.copyfile(source / name, ours / name)
            shutil.copyfile(source / name, theirs / name)
        mine = _timed(_engine_argv(_engine_config(ours, work, list(FILES))), env=_engine_env())
        theirs_run = _timed(
            [logrotate, "-f", "-s", str(work / "logrotate.state"), str(_logrotate_config(theirs, work))]
        )
        ours_bytes, theirs_bytes = _sizes(ours, ".zst"), _sizes(theirs, ".gz")
        if not ours_bytes or not theirs_bytes:
            raise RuntimeError(f"no archives: ours {ours_bytes} bytes, logrotate {theirs_bytes} bytes")
        for directory in (ours, theirs):
            shutil.rmtree(directory)
        big = _big_file(work / "big", source)
        memory = _timed(_engine_argv(_engine_config(big.parent, work, [big.name])), env=_engine_env())
        big_archive = _sizes(big.parent, ".zst")
    finally:
        for directory in (source, ours, theirs, work / "big"):
            shutil.rmtree(directory, ignore_errors=True)
    speedup = theirs_run["wall"] / mine["wall"]
    cpu_ratio = theirs_run["cpu"] / mine["cpu"]
    size_ratio = ours_bytes / theirs_bytes
    data = f"{generated / 2**30:.2f} GiB in 2 files (app.log, order_processing.log)"
    return [
        {
            "benchmark": "log_rotation",
            "metric": "rotation wall time, logrotate / ours",
            "value": f"{speedup:.1f}x ({theirs_run['wall']:.1f} s vs {mine['wall']:.1f} s)",
            "goal": f">= {GOAL_SPEEDUP:g}x",
            "met": speedup >= GOAL_SPEEDUP,
            "notes": (
                f"{data}; {version_line} compress (gzip -6) vs ours (zstd default level, verified); "
                f"CPU time {theirs_run['cpu']:.1f} s vs {mine['cpu']:.1f} s = {cpu_ratio:.1f}x"
            ),
        },
        {
            "benchmark": "log_rotation",
            "metric": "archive size, ours / logrotate",
            "value": f"{size_ratio:.3f} ({ours_bytes / MIB:.1f} MiB vs {theirs_bytes / MIB:.1f} MiB)",
            "goal": f"<= {GOAL_SIZE_RATIO:g}",
            "met": size_ratio <= GOAL_SIZE_RATIO,
            "notes": f"same {data}",
        },
        {
            "benchmark": "log_rotation",
            "metric": "peak RSS rotating one 5 GiB file",
            "value": f"{memory['peak_mb']:.0f} MB",
            "goal": f"< {GOAL_PEAK_MB:g} MB",
            "met": memory["peak_mb"] < GOAL_PEAK_MB,
            "notes": (
                f"whole engine process incl. Python; {memory['wall']:.1f} s wall, archive {big_archive / MIB:.0f} MiB"
            ),
        },
    ]


def _big_file(directory: Path, source: Path) -> Path:
    """A 5 GiB log made of the generated data repeated (memory does not depend on content)."""
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    big = directory / "big.log"
    with (source / "app.log").open("rb") as handle:
        chunk = handle.read(256 * MIB)
    with big.open("wb") as handle:
        written = 0
        while written < BIG_FILE_BYTES:
            handle.write(chunk[: BIG_FILE_BYTES - written])
            written += min(len(chunk), BIG_FILE_BYTES - written)
    return big
