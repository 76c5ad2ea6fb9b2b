"""``make run`` as a background process, for the tests, the benchmarks and the drills: start it on free ports, wait
until it says it is ready, and stop it as a user does (Ctrl-C)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sandbox.service import PROJECT_ROOT


def start_launcher(
    home: Path, *, log_file: Path, ready_file: Path | None = None, timeout: float = 420.0
) -> tuple[dict[str, Any], subprocess.Popen[bytes]]:
    """``python -m sandbox run --home <home> --free-ports`` (what ``make run`` runs) until its ready file appears;
    its ready facts (ports, credentials, what each service published) and the process. Output goes to
    ``log_file``."""
    home.mkdir(parents=True, exist_ok=True)
    ready = ready_file or home / "ready.json"
    ready.unlink(missing_ok=True)
    output = log_file.open("ab")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "sandbox", "run", "--home", str(home), "--free-ports"),
            *("--env-file", os.devnull, "--ready-file", str(ready)),
        ],
        cwd=PROJECT_ROOT,
        stdout=output,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if process.poll() is not None:
            raise RuntimeError(f"the sandbox exited with {process.returncode}: see {output.name}")
        if time.monotonic() > deadline:
            stop_launcher(process)
            raise TimeoutError(f"the sandbox was not ready after {timeout:.0f}s: see {output.name}")
        time.sleep(0.5)
    time.sleep(0.2)  # the file is written in one call; let it land
    return json.loads(ready.read_text(encoding="utf-8")), process


def stop_launcher(process: subprocess.Popen[bytes], timeout: float = 90.0) -> int | None:
    """Ctrl-C (SIGINT, as a user stops ``make run``) and wait for the launcher to stop everything it started; its
    whole process group is killed if it does not within ``timeout``. Returns its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    return process.returncode
