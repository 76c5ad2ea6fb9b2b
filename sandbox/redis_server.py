"""A throw-away Redis server on loopback (Debian's redis-server), for tests, the sandbox and benchmarks.

``redis-server`` on a free 127.0.0.1 port, no persistence, its working directory in a temporary folder. ``DEBUG``
is enabled for local connections only, so benchmarks can fill a million keys with ``DEBUG POPULATE`` in a second.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from sandbox.ports import HOST, free_port, wait_for_port


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if not found:
        raise FileNotFoundError("redis-server not found: apt-get install redis-server")
    return found


class RedisServer:
    """``with RedisServer() as server: server.client().ping()``."""

    def __init__(self, port: int | None = None, *, maxclients: int = 1000, extra_args: tuple[str, ...] = ()) -> None:
        self.port = port or free_port()
        self.maxclients = maxclients
        self.extra_args = extra_args
        self.base_dir = Path(tempfile.mkdtemp(prefix="toilless-redis-"))
        self.log_path = self.base_dir / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        argv = [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            HOST,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.base_dir),
            "--maxclients",
            str(self.maxclients),
            "--enable-debug-command",
            "local",
            "--logfile",
            str(self.log_path),
            *self.extra_args,
        ]
        self._process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            wait_for_port(self.port, timeout=30)
            self._wait_ready()
        except Exception:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float = 30.0) -> None:
        import redis

        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.client() as client:
                    client.ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline or (self._process and self._process.poll() is not None):
                    raise RuntimeError(f"Redis did not start: {self.log_path.read_text()[-2000:]}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            self._process = None
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- use -----------------------------------------------------------------------------------------------------
    def client(self, db: int = 0, **kwargs: Any) -> Any:
        """A redis-py client (bytes, not decoded: keys may be any bytes)."""
        import redis

        return redis.Redis(host=HOST, port=self.port, db=db, socket_timeout=10, **kwargs)

    def reset(self) -> None:
        """Empty every database, close every other connection, and put the settings tests change back."""
        with self.client() as client:
            client.flushall()
            client.config_set("maxmemory", "0")
            client.config_set("maxmemory-policy", "noeviction")
            client.config_set("maxclients", str(self.maxclients))
            # Connections left open by an earlier test (or not yet collected) would be counted by the next one.
            for kind in ("normal", "pubsub"):
                client.execute_command("CLIENT", "KILL", "TYPE", kind, "SKIPME", "yes")
            client.config_resetstat()

    def airflow_connection(self, db: int = 0) -> dict[str, Any]:
        """Airflow ``redis`` Connection (JSON form), as the Redis provider's hook reads it."""
        return {"conn_type": "redis", "host": HOST, "port": self.port, "extra": {"db": db}}
