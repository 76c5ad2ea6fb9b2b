"""The active server's recent log lines, bounded (no Airflow import): a file's tail or a command's output.

A file is opened through the common path check (``toilless.common.paths``: only under the allowed roots, regular
files only) and only its last ``max_bytes`` are read; a command runs as an argv with a timeout. Either way at most
``max_lines`` lines of at most 300 characters come back, secrets masked: they go to XCom and Slack.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

from toilless.common.paths import open_checked
from toilless.common.redaction import mask_secrets

MAX_LINE_CHARS = 300


def recent_lines(
    server: Mapping[str, Any], *, allowed_roots: Sequence[str], max_lines: int, max_bytes: int
) -> dict[str, Any]:
    """``{"source", "lines", "cut", "error"}`` for one server; no log source configured: source None."""
    try:
        if server.get("log_file"):
            source = f"file {server['log_file']}"
            text, cut = _tail_file(str(server["log_file"]), allowed_roots, max_bytes)
        elif server.get("log_argv"):
            source = f"command {server['log_argv'][0]}"
            text, cut = _command_output(list(server["log_argv"]), max_bytes)
        else:
            return {"source": None, "lines": [], "cut": False, "error": None}
    except Exception as err:  # a missing log is reported, it does not stop the failover
        return {"source": source, "lines": [], "cut": False, "error": mask_secrets(err)[:300]}
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > max_lines:
        lines, cut = lines[-max_lines:], True
    return {
        "source": source,
        "lines": [mask_secrets(line)[:MAX_LINE_CHARS] for line in lines],
        "cut": cut,
        "error": None,
    }


def _tail_file(path: str, roots: Sequence[str], max_bytes: int) -> tuple[str, bool]:
    with open_checked(path, roots) as stream:
        size = os.fstat(stream.fileno()).st_size
        cut = size > max_bytes
        stream.seek(max(0, size - max_bytes))
        data = stream.read(max_bytes)
    text = data.decode("utf-8", errors="replace")
    if cut and "\n" in text:
        text = text.split("\n", 1)[1]  # the first line was cut in the middle
    return text, cut


def _command_output(argv: list[str], max_bytes: int) -> tuple[str, bool]:
    result = subprocess.run(argv, capture_output=True, timeout=30, check=False, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError(f"log command exited {result.returncode}: {result.stderr[:300].decode(errors='replace')}")
    data = result.stdout
    return data[-max_bytes:].decode("utf-8", errors="replace"), len(data) > max_bytes
