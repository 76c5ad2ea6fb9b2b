"""`make run` end to end: what a newcomer gets from one command, and that Ctrl-C leaves nothing behind."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import time
from pathlib import Path

import psutil
import pytest
import requests

from tests.fixtures.live_airflow import LiveAirflow, start_launcher, stop_launcher

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DAG_IDS = sorted(path.stem for path in (REPO / "dags").glob("*.py") if not path.name.startswith("_"))


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _listening(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


def _listeners(*process_groups: int) -> list[tuple[str, str, int]]:
    """(process name, address, port) of every TCP socket listening in these process groups (launcher + Airflow)."""
    found = []
    for process in psutil.process_iter(["pid", "name"]):
        try:
            if os.getpgid(process.pid) not in process_groups:
                continue
            for connection in process.net_connections(kind="tcp"):
                if connection.status == psutil.CONN_LISTEN:
                    found.append((process.info["name"], connection.laddr.ip, connection.laddr.port))
        except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
            continue
    return found


def _wait_all_dags(live: LiveAirflow) -> list[str]:
    for dag_id in DAG_IDS:
        live.wait_for_dag(dag_id, timeout=240)
    return sorted(dag["dag_id"] for dag in live.api("GET", "/api/v2/dags", params={"limit": 100}).json()["dags"])


# Two starts and one real run: on 2 shared cores under load (load average 20) the run alone took 5 minutes.
@pytest.mark.timeout(1800)
def test_make_run_brings_everything_up_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    home = tmp_path / "airflow"
    home.mkdir()
    facts, launcher = start_launcher(home)
    console = home.parent / f"{home.name}-launcher.log"  # what `make run` printed (start_launcher's output file)
    live = LiveAirflow(facts, launcher)
    try:
        # The login the banner prints works.
        token = requests.post(
            f"{live.base_url}/auth/token", json={"username": "admin", "password": facts["password"]}, timeout=30
        )
        assert token.status_code == 201, token.text
        wrong = requests.post(
            f"{live.base_url}/auth/token", json={"username": "admin", "password": "not-it"}, timeout=30
        )
        assert wrong.status_code == 401
        # Every SOP DAG in dags/ is listed, unpaused, and nothing failed to import.
        listed = _wait_all_dags(live)
        assert set(DAG_IDS) <= set(listed)
        assert live.api("GET", "/api/v2/importErrors").json()["total_entries"] == 0
        paused = [d["dag_id"] for d in live.api("GET", "/api/v2/dags").json()["dags"] if d["is_paused"]]
        assert paused == []
        # The sandbox stand-ins are up and on loopback.
        assert live.published["slack_sink"]["url"].startswith("http://127.0.0.1:")
        assert _listening(live.published["slack_sink"]["url"])
        assert _listening(live.published["moto"]["url"])
        airflow_pgid = facts["pid"]
        assert _group_alive(airflow_pgid)

        # README: everything is bound to 127.0.0.1. Every listening socket of the launcher (sandbox servers) and of
        # Airflow's process group (api-server, and no log server on 0.0.0.0/[::] ports 8793/8794) is on loopback.
        listeners = _listeners(launcher.pid, airflow_pgid)
        assert any(port == int(live.base_url.rsplit(":", 1)[1]) for _, _, port in listeners), listeners
        assert [entry for entry in listeners if entry[1] not in ("127.0.0.1", "::1")] == []

        # The SQLite metadata DB is in WAL mode: reads (REST, UI, task heartbeats) never wait for a writer.
        with sqlite3.connect(home / "airflow.db", timeout=30) as database:
            assert database.execute("PRAGMA journal_mode").fetchone() == ("wal",)

        # One finished run gives one summary line on the console; Slack messages and moto's access log do not.
        run = live.trigger("log_rotation", run_id="make-run-console-check")
        live.wait_for_run("log_rotation", run["dag_run_id"], timeout=300)
        console_line = re.compile(r"^\[run\] log_rotation: \w+.* make-run-console-check ", re.MULTILINE)
        deadline = time.monotonic() + 30
        while not console_line.search(console.read_text(errors="replace")) and time.monotonic() < deadline:
            time.sleep(1)
    finally:
        returncode = stop_launcher(launcher)
    assert returncode == 0
    printed = console.read_text(errors="replace")
    assert "Toilless is up." in printed
    assert len(console_line.findall(printed)) == 1, printed[-3000:]
    assert "\x1b[" not in printed  # no raw colour codes
    assert "[slack #" not in printed, printed[-3000:]
    assert "HTTP/1.1" not in printed, printed[-3000:]
    # The banner stays short, and every run (however many schedules came due while it was up: it grows with the
    # SOP catalog and the time of day) has exactly one line.
    run_lines = [line for line in printed.splitlines() if line.startswith("[run] ")]
    assert len(printed.splitlines()) - len(run_lines) < 40, printed[-3000:]
    run_ids = [(line.split()[1], line.split()[-2]) for line in run_lines]
    assert len(run_ids) == len(set(run_ids)), run_lines
    # What left the console is in files under the Airflow home.
    assert (home / "sandbox" / "slack.jsonl").stat().st_size > 0
    assert "HTTP/1.1" in (home / "sandbox" / "moto.log").read_text(errors="replace")
    # Ctrl-C stopped Airflow's whole process group and every sandbox server.
    deadline = time.monotonic() + 10
    while _group_alive(airflow_pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _group_alive(airflow_pgid)
    assert not _listening(live.base_url)
    assert not _listening(live.published["slack_sink"]["url"])
    assert not _listening(live.published["moto"]["url"])

    # A second `make run` reuses the state: same login, same metadata DB, no new migration needed.
    database = home / "airflow.db"
    first_inode = database.stat().st_ino
    facts_again, launcher_again = start_launcher(home)
    try:
        assert facts_again["password"] == facts["password"]
        assert database.stat().st_ino == first_inode
        again = LiveAirflow(facts_again, launcher_again)
        assert again.api("GET", "/api/v2/monitor/health").status_code == 200
    finally:
        assert stop_launcher(launcher_again) == 0
