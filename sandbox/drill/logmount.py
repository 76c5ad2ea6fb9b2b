"""Drill `log_mount_full`: the log mount fills, LogMountLowStorage fires, log_rotation frees space, Compliance is told.

The sandbox's log mount (sandbox/services/log_rotation.py, published as ``demo_logs``) is a directory on the
machine's disk, whose real free space the drill can neither control nor should fill. The exporter therefore reports it
as a volume of ``MOUNT_BYTES`` (the way a quota or a small dedicated log volume looks to node_exporter):
``node_filesystem_size_bytes`` and ``node_filesystem_avail_bytes`` = size minus the bytes of the files under it.

* inject: a burst of realistic application log lines appended to ``app.log`` until the mount is ``FILL_TO_PERCENT``
  full (a chatty release logging at debug level);
* recovery: the mount below ``WARNING_PERCENT`` used again (log_rotation's warning_percent default).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sandbox.log_rotation_data import write_log

#: The sandbox log volume's size as the exporter reports it.
MOUNT_BYTES = 32 << 20
#: log_rotation's warning threshold (include/config/log_rotation.yaml warning_percent): the alert's and the recovery's.
WARNING_PERCENT = 70
FILL_TO_PERCENT = 88
INSTANCE = "sandbox"


def mount(published: dict[str, Any]) -> Path:
    return Path(published["demo_logs"])


def used_bytes(root: Path) -> int:
    """Bytes of every file under ``root`` (apparent sizes, symlinks not followed), as the volume would hold them."""
    total = 0
    for directory, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except FileNotFoundError:  # rotated or compressed away while we walked
                continue
    return total


def used_percent(used: int, size: int = MOUNT_BYTES) -> float:
    return 100.0 * used / size


def fill_bytes(used: int, *, size: int = MOUNT_BYTES, percent: float = FILL_TO_PERCENT) -> int:
    """How much to write so the mount is ``percent`` full (0 when it already is)."""
    return max(0, int(size * percent / 100.0) - used)


def inject(published: dict[str, Any]) -> str:
    root = mount(published)
    wanted = fill_bytes(used_bytes(root))
    now = datetime.now(UTC)
    written = write_log(root / "app.log", "app", wanted, seed=int(now.timestamp()), start=now) if wanted else 0
    return f"{written / 2**20:.1f} MiB of app log lines appended to {root / 'app.log'} ({FILL_TO_PERCENT}% full)"


def export(published: dict[str, Any]) -> dict[str, float]:
    """node_exporter's filesystem metrics for the log mount."""
    from sandbox.drill.exporters import labels_text

    root = mount(published)
    labels = labels_text({"instance": INSTANCE, "mountpoint": str(root), "fstype": "ext4"})
    return {
        f"node_filesystem_size_bytes{{{labels}}}": float(MOUNT_BYTES),
        f"node_filesystem_avail_bytes{{{labels}}}": float(max(0, MOUNT_BYTES - used_bytes(root))),
    }


def below_warning(published: dict[str, Any]) -> bool:
    root = mount(published)
    if not root.is_dir():  # a mount that is gone is not a recovered one
        return False
    try:
        return used_percent(used_bytes(root)) < WARNING_PERCENT
    except OSError:
        return False
