"""``make run``: start the sandbox services and Airflow with Connections pointing at them.

Airflow's components are started one by one (what ``airflow standalone`` does), because standalone cannot be told
to keep its log servers off the network: ``serve_logs`` binds ``0.0.0.0``/``[::]`` (ports 8793/8794) whatever the
configuration says. Scheduler and triggerer run with ``--skip-serve-logs``: on one machine the API server reads task
logs from the shared ``logs/`` folder, so every listener of ``make run`` stays on 127.0.0.1.

Real Connections win: any ``AIRFLOW_CONN_<ID>`` / ``AIRFLOW_VAR_<KEY>`` already in the environment, or in the git-ignored
``.env`` file at the repository root, is kept and the sandbox's stand-in for it is not used.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.ports import HOST, free_port
from sandbox.service import PROJECT_ROOT, SandboxContext, Service
from sandbox.services import discover

log = logging.getLogger("sandbox")

ADMIN_USER = "admin"

#: Airflow's components as ``airflow standalone`` runs them, minus the network-wide log servers (see above).
AIRFLOW_COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("scheduler", ("scheduler", "--skip-serve-logs")),
    ("dag-processor", ("dag-processor",)),
    ("triggerer", ("triggerer", "--skip-serve-logs")),
    ("api-server", ("api-server",)),
)

#: Where the Execution API (every running task's heartbeats, XComs and state changes) is served, from the environment
#: variable ``TOILLESS_EXECUTION_API``: ``shared`` (Airflow's default: the one API server serves the UI, the REST API,
#: the plugins (the alert intake) and the Execution API), ``separate`` (a second ``airflow api-server --apps execution``
#: on its own loopback port; the first runs ``--apps core``) or ``auto`` (default: separate on PostgreSQL, shared on
#: SQLite). See docs/alert_intake.md, "The webhook's own API server process".
EXECUTION_API_MODES = ("auto", "shared", "separate")
#: Set by the launcher for sandbox.airflow_group: the separate Execution API server's port (absent: shared).
EXECUTION_API_PORT_VARIABLE = "TOILLESS_EXECUTION_API_PORT"

#: Toilless's own processes, started, restarted and stopped with Airflow's components (python arguments; plugins/ is
#: put on PYTHONPATH). The alert intake's worker decides accepted alerts outside the API server (docs/alert_intake.md).
TOILLESS_COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (("intake-worker", ("-m", "toilless.intake.worker")),)


def execution_api_separate(env: dict[str, str]) -> bool:
    """Whether the Execution API gets its own API server process (``TOILLESS_EXECUTION_API``, see above).

    On PostgreSQL, apart: the webhook's answers then share their process (and its GIL) with the UI and the REST API
    only, not with the ~30 running tasks' calls (issue 12, the storm's p99). On SQLite, together by default: a second
    process would only be one more writer queueing on SQLite's single write lock.
    """
    mode = env.get("TOILLESS_EXECUTION_API", "auto").strip().lower() or "auto"
    if mode not in EXECUTION_API_MODES:
        raise ValueError(f"TOILLESS_EXECUTION_API must be one of {', '.join(EXECUTION_API_MODES)}, not {mode!r}")
    if mode == "auto":
        return not env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite").startswith("sqlite")
    return mode == "separate"


def airflow_components(env: dict[str, str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Airflow's components for this environment: :data:`AIRFLOW_COMPONENTS`, with the API server split in two
    (``--apps core`` on the main port, ``--apps execution`` on :data:`EXECUTION_API_PORT_VARIABLE`) when set."""
    port = env.get(EXECUTION_API_PORT_VARIABLE)
    if not port:
        return AIRFLOW_COMPONENTS
    split: list[tuple[str, tuple[str, ...]]] = []
    for name, args in AIRFLOW_COMPONENTS:
        if name == "api-server":
            split.append((name, (*args, "--apps", "core")))
            split.append(("execution-api-server", (*args, "--apps", "execution", "--port", port)))
        else:
            split.append((name, args))
    return tuple(split)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (``#`` comments, optional quotes) of a dotenv-style file."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :]
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{path}:{number}: expected KEY=VALUE, got {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def admin_password(home: Path) -> str:
    """The sandbox admin password: made once, kept in AIRFLOW_HOME, so a second ``make run`` logs in the same way."""
    path = home / "admin-password"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(12) + "\n", encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def airflow_environment(
    home: Path, port: int, password: str, base: dict[str, str], execution_api_port: int | None = None
) -> dict[str, str]:
    """The environment Airflow runs with: repo folders, SQLite under ``home``, loopback only, fixed login.

    ``execution_api_port``: the Execution API has its own API server there (:func:`execution_api_separate`); the
    tasks and the triggerer are sent to it.
    """
    passwords_file = home / "passwords.json"
    passwords_file.write_text(json.dumps({ADMIN_USER: password}), encoding="utf-8")
    passwords_file.chmod(0o600)
    base_url = f"http://{HOST}:{port}"
    env = dict(base)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # What `airflow standalone` would force: one machine, local task processes, the simple login.
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            # Sandbox DAGs start unpaused so schedules and alert-triggered runs really run (see README).
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
            "AIRFLOW__API__HOST": HOST,
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": base_url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": (
                f"http://{HOST}:{execution_api_port}/execution/" if execution_api_port else f"{base_url}/execution/"
            ),
            # New DAG files show up within 30 s instead of 5 minutes.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            "TOILLESS_INCLUDE_DIR": str(PROJECT_ROOT / "include"),
            "PYTHONUNBUFFERED": "1",
            # Task processes and CLI calls find `airflow` on PATH: use this virtualenv's.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}",
        }
    )
    env.pop(EXECUTION_API_PORT_VARIABLE, None)
    if execution_api_port:
        env[EXECUTION_API_PORT_VARIABLE] = str(execution_api_port)
    if env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite").startswith("sqlite"):
        # SQLite's 5 s lock wait is too short under the scheduler's write bursts (API 500 "database is locked").
        # A PostgreSQL metadata DB given in the environment (the benchmarks' second run) needs none of this.
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"] = "toilless.common.sqlite.CONNECT_ARGS"
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC"] = "toilless.common.sqlite.CONNECT_ARGS"
    return env


def use_write_ahead_log(database: Path) -> str:
    """Switch the SQLite metadata DB to write-ahead logging (kept in the file); returns the journal mode now in use.

    In SQLite's default rollback journal a writer locks out every reader: while the scheduler of running runbooks
    or an alert storm writes, each REST call, UI page and task heartbeat that only reads waits for the lock too
    (the alert storm measured 90 s answers and failed task heartbeats). With WAL, readers never wait for the
    writer; writes still take turns.
    """
    import sqlite3

    connection = sqlite3.connect(database, timeout=30)
    try:
        return str(connection.execute("PRAGMA journal_mode=WAL").fetchone()[0])
    finally:
        connection.close()


@dataclass
class Sandbox:
    """The sandbox services plus Airflow's components, started and stopped together."""

    home: Path
    port: int = 8080
    free_ports: bool = False
    env_file: Path | None = PROJECT_ROOT / ".env"
    services: list[Service] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None  # sandbox.airflow_group; its pid is the group's id
    ctx: SandboxContext | None = None
    kept_real: list[str] = field(default_factory=list)

    def start(self, timeout: float = 300.0) -> dict[str, Any]:
        """Start everything; return the facts a user (or a test) needs. Stops what it started if anything fails."""
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**(read_env_file(self.env_file) if self.env_file else {}), **os.environ}
        if self.free_ports:
            self.port = free_port()
        password = admin_password(self.home)
        try:
            sandbox_env = self._start_services(env)
            execution_api_port = free_port() if execution_api_separate(env) else None
            airflow_env = airflow_environment(
                self.home, self.port, password, {**env, **sandbox_env}, execution_api_port
            )
            self._start_airflow(airflow_env, timeout)
        except BaseException:
            self.stop()
            raise
        assert self.ctx is not None
        return {
            "base_url": f"http://{HOST}:{self.port}",
            "username": ADMIN_USER,
            "password": password,
            "home": str(self.home),
            "log_file": str(self.log_file),
            "pid": self.process.pid if self.process else None,
            "published": _jsonable(self.ctx.published),
            "kept_real_connections": self.kept_real,
        }

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "airflow.log"

    def exited_component(self) -> str | None:
        """Why Airflow stopped, if it did: a component ended (its name is the last line of the log file)."""
        if self.process is None or self.process.poll() is None:
            return None
        return f"(a component ended, exit code {self.process.returncode})"

    def _start_services(self, env: dict[str, str]) -> dict[str, str]:
        self.ctx = SandboxContext(home=self.home / "sandbox", preferred_ports=not self.free_ports)
        self.ctx.published["airflow_url"] = f"http://{HOST}:{self.port}"  # for commands a service prints
        self.ctx.home.mkdir(parents=True, exist_ok=True)
        added: dict[str, str] = {}
        for service_class in discover():
            service = service_class()
            service.start(self.ctx)
            self.services.append(service)
            for conn_id, connection in service.connections(self.ctx).items():
                key = f"AIRFLOW_CONN_{conn_id.upper()}"
                if key in env:
                    self.kept_real.append(conn_id)
                    continue
                added[key] = json.dumps(connection)
            for var_key, value in service.variables(self.ctx).items():
                key = f"AIRFLOW_VAR_{var_key.upper()}"
                if key not in env:
                    added[key] = value
        return added

    def _start_airflow(self, env: dict[str, str], timeout: float) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        airflow = str(Path(sys.executable).with_name("airflow"))
        with self.log_file.open("ab") as output:
            migrate = subprocess.run(
                [airflow, "db", "migrate"],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.home,
                timeout=timeout,
                check=False,
            )
            if migrate.returncode != 0:
                raise RuntimeError(f"airflow db migrate exited with {migrate.returncode}; see {self.log_file}")
            database = self.home / "airflow.db"
            if env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite").startswith("sqlite") and database.exists():
                use_write_ahead_log(database)
            # Own session and process group (sandbox/airflow_group.py): Ctrl-C reaches us, and we stop the whole
            # group (components and their task processes) ourselves.
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sandbox.airflow_group"],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=PROJECT_ROOT,  # to import sandbox; the components themselves run in AIRFLOW_HOME
            )
        self._wait_healthy(timeout)

    def _wait_healthy(self, timeout: float) -> None:
        url = f"http://{HOST}:{self.port}/api/v2/monitor/health"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            exited = self.exited_component()
            if exited is not None:
                raise RuntimeError(f"airflow {exited} stopped during start-up; see {self.log_file}")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    health = json.load(response)
                if health.get("scheduler", {}).get("status") == "healthy":
                    return
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(1)
        raise TimeoutError(
            f"Airflow did not become healthy on port {self.port} within {timeout:.0f}s; see {self.log_file}"
        )

    def stop(self, grace: float = 30.0) -> None:
        """Stop Airflow (its whole process group) and every service, in reverse start order."""
        if self.process is not None:
            _signal_group(self.process.pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while _group_alive(self.process.pid) and time.monotonic() < deadline:
                self.process.poll()  # reap the group leader, so it does not count as alive
                time.sleep(0.2)
            # Whatever the components' children left behind goes too.
            _signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        for service in reversed(self.services):
            try:
                service.stop()
            except Exception:
                log.exception("stopping sandbox service %s failed", service.name)
        self.services.clear()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    url = getattr(value, "url", None)
    return {"url": url, **({"jsonl": str(value.jsonl_path)} if getattr(value, "jsonl_path", None) else {})}


def banner(facts: dict[str, Any], services: list[Service], ctx: SandboxContext) -> str:
    lines = [
        "",
        "Toilless is up.",
        f"  Airflow UI:  {facts['base_url']}   login: {facts['username']} / {facts['password']}",
        f"  Airflow log: {facts['log_file']} (all components; the console shows one line per finished run)",
    ]
    lines += [f"  {service.name:<12} {service.summary(ctx)}" for service in services]
    if facts["kept_real_connections"]:
        lines.append(f"  Real connections kept (not sandboxed): {', '.join(sorted(facts['kept_real_connections']))}")
    lines.append("Press Ctrl-C to stop everything.")
    return "\n".join(lines)
