"""Demo log mount for log_rotation: realistic app.log and order_processing.log that keep growing.

Under the sandbox home, ``demo_logs/``: each start tops both files up to about 2 MiB of realistic lines (see
sandbox/log_rotation_data.py) so a run always has work, and a writer thread appends a line every half second to each through
Python's ``WatchedFileHandler``, which reopens its file when the rotation renames it: the live demo of a lossless
rename rotation. The Variable ``toilless_log_rotation`` points both log sets at this directory.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import random
import threading
from datetime import UTC, datetime
from pathlib import Path

from sandbox.log_rotation_data import app_lines, order_lines, write_log
from sandbox.service import SandboxContext, Service

TOP_UP_BYTES = 2 << 20
FILES = {"app": "app.log", "order_processing": "order_processing.log"}


class DemoLogsService(Service):
    name = "demo_logs"
    order = 50
    description = "Demo log mount with app.log and order_processing.log (log_rotation)"

    def __init__(self) -> None:
        self.directory: Path | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handlers: list[logging.Handler] = []

    def start(self, ctx: SandboxContext) -> None:
        self.directory = ctx.home / "demo_logs"
        self.directory.mkdir(parents=True, exist_ok=True)
        now = datetime.now(UTC)
        for index, (kind, name) in enumerate((("app", FILES["app"]), ("orders", FILES["order_processing"]))):
            path = self.directory / name
            size = path.stat().st_size if path.exists() else 0
            # Idempotent: only tops up what a rotation took away, never grows past the demo size.
            if size < TOP_UP_BYTES:
                write_log(path, kind, TOP_UP_BYTES - size, seed=int(now.timestamp()) + index, start=now)
        self._stop.clear()
        self._thread = threading.Thread(target=self._write_forever, name="demo-log-writer", daemon=True)
        self._thread.start()
        ctx.published["demo_logs"] = str(self.directory)

    def _write_forever(self) -> None:
        assert self.directory is not None
        loggers = []
        for name, filename in FILES.items():
            handler = logging.handlers.WatchedFileHandler(self.directory / filename, encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(message)s"))
            self._handlers.append(handler)
            logger = logging.getLogger(f"sandbox.demo_logs.{name}")
            logger.propagate = False
            logger.setLevel(logging.INFO)
            logger.addHandler(handler)
            loggers.append(logger)
        rng = random.Random()
        now = datetime.now(UTC)
        streams = [app_lines(rng, now), order_lines(rng, now)]
        while not self._stop.wait(0.5):
            for logger, stream in zip(loggers, streams, strict=True):
                logger.info(next(stream).rstrip("\n"))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for handler in self._handlers:
            handler.close()

    def variables(self, ctx: SandboxContext) -> dict[str, str]:
        assert self.directory is not None
        root = str(self.directory)
        # WatchedFileHandler notices the rename itself: no signal, no pid file.
        writer = {"reopen": {"signal": None, "pid_file": None, "timeout_seconds": 5}, "min_size": "64KiB"}
        override = {
            "allowed_roots": [root],
            "state_dir": str(ctx.home / "log_rotation_state"),
            "log_sets": {
                "app": {"root": root, "globs": [FILES["app"]], **writer},
                "order_processing": {"root": root, "globs": [FILES["order_processing"]], **writer},
            },
        }
        return {"toilless_log_rotation": json.dumps(override)}

    def summary(self, ctx: SandboxContext) -> str:
        return (
            f"Demo log mount {self.directory}: app.log and order_processing.log, written to twice a second; "
            "trigger log_rotation (tick Dry run first to see what it would do)"
        )
