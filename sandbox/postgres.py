"""A throw-away PostgreSQL server on loopback (Debian's postgresql-15), for tests and benchmarks.

``initdb`` into a temporary directory, ``postgres`` on a free port with its unix socket in that directory too.
PostgreSQL refuses to run as root: when we are root, both run as the ``postgres`` system user via ``runuser``.
Durability is switched off (fsync, full-page writes): this server holds generated data only.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from sandbox.ports import HOST, free_port, wait_for_port

SUPERUSER = "postgres"


def postgres_bin_dir() -> Path:
    """Where initdb and postgres live (Debian keeps them out of PATH)."""
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "postgres").exists():
            return candidate
    found = shutil.which("postgres")
    if found:
        return Path(found).parent
    raise FileNotFoundError("PostgreSQL server binaries not found: apt-get install postgresql")


class PostgresServer:
    """``with PostgresServer() as server: server.connect("orders")``."""

    def __init__(
        self, port: int | None = None, base_dir: Path | None = None, settings: dict[str, str] | None = None
    ) -> None:
        self.port = port or free_port()
        #: Extra server settings (``-c name=value``), e.g. ``{"max_connections": "2100"}``; win over the defaults.
        self.settings = {"max_connections": "50", **(settings or {})}
        self._own_dir = base_dir is None
        self.base_dir = base_dir or Path(tempfile.mkdtemp(prefix="toilless-pg-"))
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "socket"
        self.log_path = self.base_dir / "postgres.log"
        self._process: subprocess.Popen[bytes] | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def _as_server_user(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        return ["runuser", "-u", SUPERUSER, "--", *argv]

    def start(self) -> PostgresServer:
        bin_dir = postgres_bin_dir()
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam(SUPERUSER)
            for path in (self.base_dir, self.socket_dir):
                os.chown(path, user.pw_uid, user.pw_gid)
        if not (self.data_dir / "PG_VERSION").exists():
            self._create_data_dir(bin_dir)
        log_handle = self.log_path.open("ab")
        options = {
            "listen_addresses": HOST,
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            **self.settings,
        }
        self._process = subprocess.Popen(
            self._as_server_user(
                [
                    str(bin_dir / "postgres"),
                    "-D",
                    str(self.data_dir),
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.socket_dir),
                    *[part for name, value in options.items() for part in ("-c", f"{name}={value}")],
                ]
            ),
            stdout=log_handle,
            stderr=subprocess.STDOUT,
        )
        log_handle.close()
        try:
            wait_for_port(self.port, timeout=60)
            self._wait_ready()
        except Exception:
            self.stop()
            raise
        return self

    def _create_data_dir(self, bin_dir: Path) -> None:
        subprocess.run(
            self._as_server_user(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )

    def _wait_ready(self, timeout: float = 60.0) -> None:
        import psycopg2

        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg2.connect(**self.dsn("postgres")).close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline or (self._process and self._process.poll() is not None):
                    raise RuntimeError(f"PostgreSQL did not start: {self.log_path.read_text()[-2000:]}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            self._process = None
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- use -----------------------------------------------------------------------------------------------------
    def dsn(self, database: str) -> dict[str, Any]:
        return {"host": HOST, "port": self.port, "user": SUPERUSER, "dbname": database}

    def connect(self, database: str) -> Any:
        """A psycopg2 connection to ``database``."""
        import psycopg2

        return psycopg2.connect(**self.dsn(database))

    def create_database(self, name: str, *, recreate: bool = True) -> None:
        import psycopg2
        from psycopg2 import sql

        connection = psycopg2.connect(**self.dsn("postgres"))
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                if recreate:
                    cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            connection.close()

    def airflow_connection(self, database: str) -> dict[str, Any]:
        """Airflow ``postgres`` Connection (JSON form) to ``database``."""
        return {"conn_type": "postgres", "host": HOST, "port": self.port, "login": SUPERUSER, "schema": database}


class PostgresReplica(PostgresServer):
    """A real streaming replica of ``primary`` (``pg_basebackup -R``: standby.signal + primary_conninfo), hot standby.

    ``settings`` go to the replica's server, e.g. ``{"hot_standby_feedback": "off", "max_standby_streaming_delay":
    "-1"}`` so a long query on the replica holds replay.
    """

    def __init__(
        self,
        primary: PostgresServer,
        port: int | None = None,
        base_dir: Path | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        super().__init__(port=port, base_dir=base_dir, settings={"hot_standby": "on", **(settings or {})})
        self.primary = primary

    def _create_data_dir(self, bin_dir: Path) -> None:
        # The primary's own defaults (wal_level=replica, max_wal_senders=10, pg_hba "host replication all
        # 127.0.0.1/32 trust" from initdb --auth=trust) allow this without changes.
        subprocess.run(
            self._as_server_user(
                [
                    str(bin_dir / "pg_basebackup"),
                    "-D",
                    str(self.data_dir),
                    "-h",
                    HOST,
                    "-p",
                    str(self.primary.port),
                    "-U",
                    SUPERUSER,
                    "-R",
                    "-X",
                    "stream",
                    "-c",
                    "fast",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=300,
        )

    def wait_streaming(self, timeout: float = 60.0) -> None:
        """Until the replica's WAL receiver streams from the primary."""
        deadline = time.monotonic() + timeout
        while True:
            connection = self.connect("postgres")
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT status FROM pg_stat_wal_receiver")
                    row = cursor.fetchone()
            finally:
                connection.close()
            if row and row[0] == "streaming":
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"replica not streaming: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.1)
