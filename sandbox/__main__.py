"""``python -m sandbox run``: what ``make run`` calls. See sandbox/launcher.py."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from sandbox.console import RunSummaries
from sandbox.launcher import Sandbox, banner
from sandbox.service import PROJECT_ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the sandbox and Airflow until Ctrl-C")
    run.add_argument("--home", type=Path, default=PROJECT_ROOT / ".airflow", help="AIRFLOW_HOME (state is kept here)")
    run.add_argument("--port", type=int, default=8080, help="Airflow API/UI port on 127.0.0.1")
    run.add_argument("--free-ports", action="store_true", help="use free ports for everything (tests)")
    run.add_argument(
        "--env-file", type=Path, default=PROJECT_ROOT / ".env", help="real Connections (AIRFLOW_CONN_*) to use instead"
    )
    run.add_argument("--ready-file", type=Path, help="write the start-up facts as JSON here once up (tests)")
    args = parser.parse_args(argv)

    # Ctrl-C or SIGTERM at any moment, also during start-up, ends in Sandbox.stop().
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)

    sandbox = Sandbox(home=args.home.resolve(), port=args.port, free_ports=args.free_ports, env_file=args.env_file)
    print(f"Starting the sandbox and Airflow in {sandbox.home} (first start migrates the DB, about a minute)...")
    try:
        facts = sandbox.start()
    except KeyboardInterrupt:
        print("Interrupted during start-up; stopped.", flush=True)
        return 130
    except Exception as err:
        print(f"make run failed: {err}", file=sys.stderr)
        return 1
    assert sandbox.ctx is not None
    print(banner(facts, sandbox.services, sandbox.ctx), flush=True)
    if args.ready_file:
        args.ready_file.write_text(json.dumps(facts), encoding="utf-8")
    # From here on the console shows one line per finished run and errors; the rest is in the files above.
    summaries = RunSummaries(facts["base_url"], facts["username"], facts["password"]).start()
    try:
        while True:
            time.sleep(1)
            exited = sandbox.exited_component()
            if exited is not None:
                print(f"Airflow {exited} stopped; see {facts['log_file']}", file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        return 0
    finally:
        summaries.stop()
        print("Stopping...", flush=True)
        sandbox.stop()
        print("Stopped.", flush=True)


def _interrupt(signum: int, frame: object) -> None:
    # Once: a second Ctrl-C (or the SIGTERM after it) must not abort the clean-up half-way, which left Airflow's
    # whole process group running with nobody to stop it.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
