"""``python -m sandbox.airflow_group``: Airflow's components in one process group, for ``make run``.

The launcher starts this as a new session; the components it starts stay in that session's process group, so the
launcher stops all of them (and their task processes) with one signal to the group. A process can only join a
process group of its own session, which is why the components are not started by the launcher directly.

Ends, with the component's exit code, as soon as any component ends: a half-running Airflow is not left behind
looking healthy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sandbox.launcher import AIRFLOW_COMPONENTS


def main() -> int:
    airflow = str(Path(sys.executable).with_name("airflow"))
    home = os.environ["AIRFLOW_HOME"]
    running = {
        name: subprocess.Popen([airflow, *command], stdin=subprocess.DEVNULL, cwd=home)
        for name, command in AIRFLOW_COMPONENTS
    }
    while True:
        for name, process in running.items():
            if process.poll() is not None:
                print(f"airflow {name} exited with {process.returncode}", flush=True)
                return process.returncode or 1
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
