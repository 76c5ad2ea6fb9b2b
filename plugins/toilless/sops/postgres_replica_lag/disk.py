"""Free space of a replica's data directory, where a way to measure it is configured. No Airflow.

``path``: ``os.statvfs`` of a path the worker sees (the replica on the same host, or its volume mounted);
``command``: an argv (no shell) printing ``<free_bytes> <total_bytes>``, e.g. a script that asks the replica's host.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from typing import Any


def measure(disk: Mapping[str, Any], *, timeout: float = 30.0) -> dict[str, Any] | None:
    """``{"free_bytes", "total_bytes", "free_pct", "method"}``, None when no way is configured; an error is reported
    as ``{"error": ...}`` (a disk probe must not hide the lag diagnosis)."""
    method = disk.get("method", "none")
    try:
        if method == "path":
            stats = os.statvfs(str(disk["path"]))
            free, total = stats.f_bavail * stats.f_frsize, stats.f_blocks * stats.f_frsize
        elif method == "command":
            result = subprocess.run(
                [str(part) for part in disk["argv"]], capture_output=True, text=True, timeout=timeout, check=True
            )
            free_text, total_text = result.stdout.split()[:2]
            free, total = int(free_text), int(total_text)
        else:
            return None
    except (OSError, ValueError, subprocess.SubprocessError) as err:
        return {"method": method, "error": f"{type(err).__name__}: {err}"[:300]}
    if total <= 0 or free < 0:
        return {"method": method, "error": f"implausible answer: free {free}, total {total}"}
    return {"method": method, "free_bytes": free, "total_bytes": total, "free_pct": round(100.0 * free / total, 1)}
