"""``python -m sandbox.airflow_group``: Airflow's components (and Toilless's intake worker) in one process group,
for ``make run``.

The launcher starts this as a new session; the components it starts stay in that session's process group, so the
launcher stops all of them (and their task processes) with one signal to the group. A process can only join a
process group of its own session, which is why the components are not started by the launcher directly.

A component that ends is started again (a scheduler can exit on a "database is locked" from SQLite under load),
at most ``MAX_RESTARTS`` times within ``RESTART_WINDOW_SECONDS``; then this ends with the component's exit code,
and the launcher reports it and stops everything: a half-running Airflow is not left behind looking healthy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sandbox.launcher import TOILLESS_COMPONENTS, airflow_components

MAX_RESTARTS = 3
RESTART_WINDOW_SECONDS = 600.0


def component_commands(env: dict[str, str] | None = None) -> dict[str, list[str]]:
    """Each component's command line: Airflow's (``airflow <command>``) and Toilless's (``python <args>``).

    ``env`` (default: this process's) says whether the Execution API has its own API server (the launcher sets it).
    """
    airflow = str(Path(sys.executable).with_name("airflow"))
    components = airflow_components(dict(os.environ) if env is None else env)
    commands = {name: [airflow, *args] for name, args in components}
    niceness = tasks_niceness(dict(os.environ) if env is None else env)
    if niceness:
        # The scheduler starts every task process (LocalExecutor): they inherit its niceness.
        commands["scheduler"] = ["nice", "-n", str(niceness), *commands["scheduler"]]
    commands |= {name: [sys.executable, *args] for name, args in TOILLESS_COMPONENTS}
    return commands


def tasks_niceness(env: dict[str, str]) -> int:
    """``TOILLESS_TASKS_NICENESS`` (0-19, default 0): how much lower the scheduler and the task processes it starts
    run than the API server, the intake worker and the triggerer, when they share a machine's CPUs."""
    value = env.get("TOILLESS_TASKS_NICENESS", "").strip() or "0"
    niceness = int(value)
    if not 0 <= niceness <= 19:
        raise ValueError(f"TOILLESS_TASKS_NICENESS must be 0-19, not {value}")
    return niceness


def component_environment(base: dict[str, str]) -> dict[str, str]:
    """``base`` with plugins/ on PYTHONPATH: Toilless's processes import toilless from there (Airflow's own
    components add the plugins folder to sys.path themselves)."""
    env = dict(base)
    plugins = base.get("AIRFLOW__CORE__PLUGINS_FOLDER", "")
    env["PYTHONPATH"] = os.pathsep.join(path for path in (plugins, base.get("PYTHONPATH", "")) if path)
    return env


def main() -> int:
    home = os.environ["AIRFLOW_HOME"]
    commands = component_commands()
    env = component_environment(dict(os.environ))

    def start(name: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(commands[name], stdin=subprocess.DEVNULL, cwd=home, env=env)

    running = {name: start(name) for name in commands}
    restarts: dict[str, list[float]] = {name: [] for name in commands}
    while True:
        for name, process in running.items():
            if process.poll() is None:
                continue
            moment = time.monotonic()
            recent = [at for at in restarts[name] if moment - at < RESTART_WINDOW_SECONDS]
            if len(recent) >= MAX_RESTARTS:
                print(f"airflow {name} exited with {process.returncode} again; giving up", flush=True)
                return process.returncode or 1
            print(f"airflow {name} exited with {process.returncode}; starting it again", flush=True)
            restarts[name] = [*recent, moment]
            running[name] = start(name)
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
