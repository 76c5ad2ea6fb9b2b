"""Two real DNS servers (Debian's dnsmasq, unprivileged, on loopback) serving a test zone, for tests and `make run`.

``ns1`` listens on 127.0.0.1 and ``ns2`` on 127.0.0.2 (both loopback on Linux; distinct addresses so a Route 53
record can name each one), each on a free port. Everything the team's ``dnsTool`` stand-in (:mod:`sandbox.dnstool`)
needs is in ``<home>/state.json``: which server is active, how each one is started, injected faults. The tool runs in
another process, so the servers are real daemons tracked by pid files, never children of whoever started them.

Ways a server breaks (:meth:`DnsPair.break_server`), each produced by the real server, not simulated in the client:

- ``stopped``: the process is gone (connection refused);
- ``servfail``: dnsmasq forwards the zone to an upstream that answers SERVFAIL (a broken backend), and passes it on;
- ``wrong_data``: dnsmasq serves other addresses for the zone's names;
- ``slow``: the process is paused (SIGSTOP) for a while: the kernel still accepts TCP connections, answers come late.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sandbox.dns_servfail import ServfailUpstream, free_port_on

ZONE = "example.test"
#: The zone's names and their addresses (TEST-NET-1, never routed).
RECORDS = {"www.example.test": "192.0.2.10", "api.example.test": "192.0.2.11"}
#: What a server breaking with ``wrong_data`` serves instead (TEST-NET-2).
WRONG_RECORDS = {"www.example.test": "198.51.100.66", "api.example.test": "198.51.100.67"}
ADDRESSES = {"ns1": "127.0.0.1", "ns2": "127.0.0.2"}
MODES = ("ok", "servfail", "wrong_data")
BREAKS = ("stopped", "servfail", "wrong_data", "slow")
STATE_FILE = "state.json"
REPO = Path(__file__).resolve().parents[1]


def dnsmasq_binary() -> str:
    found = shutil.which("dnsmasq") or ("/usr/sbin/dnsmasq" if Path("/usr/sbin/dnsmasq").exists() else None)
    if not found:
        raise RuntimeError("dnsmasq not found: apt-get install dnsmasq-base (scripts/install_test_deps.sh)")
    return found


# -- state shared with the dnsTool stand-in --------------------------------------------------------------------


def read_state(home: Path) -> dict[str, Any]:
    return json.loads((home / STATE_FILE).read_text(encoding="utf-8"))


def write_state(home: Path, state: dict[str, Any]) -> None:
    tmp = home / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, home / STATE_FILE)


def pid_of(home: Path, name: str) -> int | None:
    """The pid of server ``name`` if its dnsmasq is alive (pid file and a process that is our dnsmasq)."""
    try:
        pid = int((home / f"{name}.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None
    # A reused pid is not ours: only a dnsmasq started with this server's pid file counts.
    if "dnsmasq" not in cmdline or str(home / f"{name}.pid") not in cmdline or status == "Z":
        return None
    return pid


def server_args(home: Path, state: dict[str, Any], name: str) -> list[str]:
    server = state["servers"][name]
    mode = server["mode"]
    args = [
        dnsmasq_binary(),
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        "--bind-interfaces",
        f"--listen-address={server['address']}",
        f"--port={server['port']}",
        f"--user={getpass.getuser()}",
        f"--pid-file={home / f'{name}.pid'}",
        "--log-queries",
        f"--log-facility={home / f'{name}.log'}",
        "--cache-size=0",
    ]
    if mode == "ok":
        args += [f"--host-record={host},{ip}" for host, ip in RECORDS.items()]
    elif mode == "wrong_data":
        args += [f"--host-record={host},{ip}" for host, ip in WRONG_RECORDS.items()]
    elif mode == "servfail":
        args += [f"--server=/{ZONE}/127.0.0.1#{state['upstream_port']}"]
    else:
        raise ValueError(f"unknown mode {mode!r}")
    return args


def start_server(home: Path, name: str) -> int:
    """Start server ``name`` (a daemon: dnsmasq forks, writes its pid file and the parent exits)."""
    state = read_state(home)
    if (pid := pid_of(home, name)) is not None:
        return pid
    (home / f"{name}.pid").unlink(missing_ok=True)
    result = subprocess.run(server_args(home, state, name), capture_output=True, text=True, timeout=10, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"dnsmasq {name} did not start: {result.stderr.strip()[:500]}")
    server = state["servers"][name]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pid = pid_of(home, name)
        if pid is not None and _tcp_open(server["address"], int(server["port"])):
            return pid
        time.sleep(0.02)
    raise RuntimeError(f"dnsmasq {name} did not come up on {server['address']}:{server['port']}")


def stop_server(home: Path, name: str, timeout: float = 10.0) -> bool:
    """Stop server ``name``; True if it was running."""
    pid = pid_of(home, name)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    os.kill(pid, signal.SIGCONT)  # a paused ("slow") server acts on SIGTERM only once continued
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_of(home, name) is not None:
        time.sleep(0.02)
    if pid_of(home, name) is not None:
        os.kill(pid, signal.SIGKILL)
    (home / f"{name}.pid").unlink(missing_ok=True)
    return True


def _tcp_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


# -- the pair --------------------------------------------------------------------------------------------------


class DnsPair:
    """ns1 (active at start) and ns2, their state directory, and the ``dnsTool`` stand-in installed in it."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.upstream = ServfailUpstream()
        self._resume_timers: list[threading.Timer] = []

    # lifecycle
    def start(self) -> DnsPair:
        self.home.mkdir(parents=True, exist_ok=True)
        self.upstream.start()
        state = {
            "active": "ns1",
            "upstream_port": self.upstream.port,
            "servers": {
                name: {"address": address, "port": free_port_on(address), "mode": "ok"}
                for name, address in ADDRESSES.items()
            },
            "faults": {},
        }
        write_state(self.home, state)
        self.install_tool()
        for name in ADDRESSES:
            start_server(self.home, name)
        return self

    def stop(self) -> None:
        self._cancel_timers()
        for name in ADDRESSES:
            stop_server(self.home, name)
        self.upstream.stop()

    def __enter__(self) -> DnsPair:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Both servers running and answering correctly, ns1 active, no faults, empty call log and logs."""
        self._cancel_timers()
        state = read_state(self.home)
        for name in ADDRESSES:
            pid = pid_of(self.home, name)
            if pid is not None:
                os.kill(pid, signal.SIGCONT)
            if state["servers"][name]["mode"] != "ok":
                stop_server(self.home, name)
                state["servers"][name]["mode"] = "ok"
        state.update(active="ns1", faults={})
        write_state(self.home, state)
        (self.home / "calls.log").unlink(missing_ok=True)
        for name in ADDRESSES:
            (self.home / f"{name}.log").write_text("")
            start_server(self.home, name)

    def install_tool(self) -> Path:
        """``<home>/bin/dnsTool``: the team's tool stand-in, bound to this pair's state directory."""
        bin_dir = self.home / "bin"
        bin_dir.mkdir(exist_ok=True)
        tool = bin_dir / "dnsTool"
        tool.write_text(
            f"#!{sys.executable}\n"
            "import sys\n"
            f"sys.path.insert(0, {str(REPO)!r})\n"
            "from sandbox.dnstool import main\n"
            f"sys.exit(main(sys.argv[1:], {str(self.home)!r}))\n",
            encoding="utf-8",
        )
        tool.chmod(0o755)
        return tool

    # facts
    @property
    def tool(self) -> Path:
        return self.home / "bin" / "dnsTool"

    def state(self) -> dict[str, Any]:
        return read_state(self.home)

    @property
    def active(self) -> str:
        return str(self.state()["active"])

    def address(self, name: str) -> tuple[str, int]:
        server = self.state()["servers"][name]
        return server["address"], int(server["port"])

    def running(self, name: str) -> bool:
        return pid_of(self.home, name) is not None

    def calls(self) -> list[list[str]]:
        """Every dnsTool invocation since the last reset (argv after the program name)."""
        path = self.home / "calls.log"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def log_path(self, name: str) -> Path:
        return self.home / f"{name}.log"

    def servers_config(self) -> dict[str, Any]:
        """The SOP's ``servers`` setting for this pair."""
        state = self.state()
        return {
            name: {"address": server["address"], "port": int(server["port"]), "log_file": str(self.log_path(name))}
            for name, server in state["servers"].items()
        }

    # faults
    def break_server(self, name: str, how: str, *, seconds: float = 30.0) -> None:
        if how not in BREAKS:
            raise ValueError(f"break {how!r}: one of {', '.join(BREAKS)}")
        if how == "stopped":
            stop_server(self.home, name)
            return
        if how == "slow":
            pid = pid_of(self.home, name)
            assert pid is not None, f"{name} is not running"
            os.kill(pid, signal.SIGSTOP)
            timer = threading.Timer(seconds, self._resume, args=(pid,))
            timer.daemon = True
            timer.start()
            self._resume_timers.append(timer)
            return
        self.set_mode(name, how)

    def set_mode(self, name: str, mode: str) -> None:
        """Restart ``name`` serving ``mode`` (ok, servfail, wrong_data)."""
        state = read_state(self.home)
        state["servers"][name]["mode"] = mode
        write_state(self.home, state)
        stop_server(self.home, name)
        start_server(self.home, name)

    def restore(self, name: str) -> None:
        pid = pid_of(self.home, name)
        if pid is not None:
            os.kill(pid, signal.SIGCONT)
        self.set_mode(name, "ok")

    def restore_after(self, name: str, seconds: float) -> threading.Timer:
        timer = threading.Timer(seconds, self.restore, args=(name,))
        timer.daemon = True
        timer.start()
        self._resume_timers.append(timer)
        return timer

    def restore_when_queried(
        self, name: str, queries: int, *, delay: float = 0.5, timeout: float = 60.0
    ) -> threading.Thread:
        """Restore ``name`` ``delay`` s after its log shows ``queries`` queries (a probe has seen it broken)."""

        def watch() -> None:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    seen = self.log_path(name).read_text(errors="replace").count("query[")
                except OSError:
                    seen = 0
                if seen >= queries:
                    time.sleep(delay)
                    self.restore(name)
                    return
                time.sleep(0.05)

        thread = threading.Thread(target=watch, daemon=True, name=f"restore-{name}")
        thread.start()
        return thread

    def fault(self, action: str, outcome: str | None) -> None:
        """Make the tool's ``action`` (shutdown, failover) fail (``"fail"``) or behave again (None)."""
        state = read_state(self.home)
        faults = state.setdefault("faults", {})
        if outcome is None:
            faults.pop(action, None)
        else:
            faults[action] = outcome
        write_state(self.home, state)

    def _resume(self, pid: int) -> None:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass

    def _cancel_timers(self) -> None:
        for timer in self._resume_timers:
            timer.cancel()
        self._resume_timers.clear()


def main(argv: list[str] | None = None) -> int:
    """``python -m sandbox.dns_pair <home> break <server> <how> | restore <server> | reset | status``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m sandbox.dns_pair")
    parser.add_argument("home", type=Path)
    parser.add_argument("command", choices=["break", "restore", "reset", "status"])
    parser.add_argument("server", nargs="?", choices=sorted(ADDRESSES))
    parser.add_argument("how", nargs="?", choices=BREAKS)
    args = parser.parse_args(argv)
    pair = DnsPair(args.home)
    if args.command == "break":
        if not (args.server and args.how):
            parser.error("break needs a server and how")
        if args.how == "slow":
            # No timer outlives this process: the server stays paused until `restore` or `reset`.
            pid = pid_of(pair.home, args.server)
            if pid is not None:
                os.kill(pid, signal.SIGSTOP)
        else:
            pair.break_server(args.server, args.how)
    elif args.command == "restore":
        if not args.server:
            parser.error("restore needs a server")
        pair.restore(args.server)
    elif args.command == "reset":
        pair.reset()
    state = pair.state()
    for name in sorted(ADDRESSES):
        server = state["servers"][name]
        running = "running" if pair.running(name) else "stopped"
        active = " (active)" if state["active"] == name else ""
        print(f"{name}{active}: {server['address']}:{server['port']} {server['mode']}, {running}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
