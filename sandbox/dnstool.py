"""A working stand-in for the networking team's ``dnsTool``, over the two local dnsmasq servers of :mod:`sandbox.dns_pair`.

The calls the SOP makes, and what the stand-in answers (one line on stdout; errors on stderr with a non-zero exit):

- ``dnsTool -q active_server`` prints the active server's name, e.g. ``ns1``;
- ``dnsTool -a shutdown -s <server>`` stops that server's DNS process; ``shutdown <server>: ok``;
- ``dnsTool -a failover -s <standby>`` starts the standby if needed and makes it active; refused (exit 3) while the
  old active server's process still runs, unless ``-f`` (force) is given; ``failover <standby>: ok``.

Faults for tests (``state.json`` ``faults``): ``{"shutdown": "fail"}`` makes a shutdown fail without stopping anything;
``{"failover": "fail"}`` the same for a failover. Every call is appended to ``calls.log`` (one JSON argv a line).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sandbox.dns_pair import pid_of, read_state, start_server, stop_server, write_state


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"dnsTool: {message}", file=sys.stderr)
        raise SystemExit(2)


def main(argv: list[str], home: str) -> int:
    state_dir = Path(home)
    with (state_dir / "calls.log").open("a", encoding="utf-8") as calls:
        calls.write(json.dumps(argv) + "\n")
    parser = _Parser(prog="dnsTool", add_help=False)
    parser.add_argument("-q", dest="query", choices=["active_server"])
    parser.add_argument("-a", dest="action", choices=["shutdown", "failover"])
    parser.add_argument("-s", dest="server")
    parser.add_argument("-f", dest="force", action="store_true")
    args = parser.parse_args(argv)
    state = read_state(state_dir)
    if args.query:
        print(state["active"])
        return 0
    if not args.action or not args.server:
        print("dnsTool: need -q active_server, or -a <action> -s <server>", file=sys.stderr)
        return 2
    if args.server not in state["servers"]:
        print(f"dnsTool: unknown server {args.server}", file=sys.stderr)
        return 2
    if state.get("faults", {}).get(args.action) == "fail":
        print(f"dnsTool: {args.action} {args.server} failed: agent not responding", file=sys.stderr)
        return 1
    if args.action == "shutdown":
        stop_server(state_dir, args.server)
        print(f"shutdown {args.server}: ok")
        return 0
    old = state["active"]
    if old != args.server and pid_of(state_dir, old) is not None and not args.force:
        print(f"dnsTool: {old} is still running; shut it down first or use -f", file=sys.stderr)
        return 3
    start_server(state_dir, args.server)
    state = read_state(state_dir)
    state["active"] = args.server
    write_state(state_dir, state)
    print(f"failover {args.server}: ok")
    return 0
