"""A log writer for the rotation tests: appends numbered lines as fast as it can, reopens its file on SIGHUP.

Run as ``python logwriter.py LOG PIDFILE``. Each line is one ``write`` on an O_APPEND file, like a real logger. On
SIGTERM it stops and prints how many lines it wrote, so the test knows every sequence number that must exist.
"""

from __future__ import annotations

import os
import signal
import sys
import time

reopen_requested = False
stop_requested = False


def _on_hup(signum: int, frame: object) -> None:
    global reopen_requested
    reopen_requested = True


def _on_term(signum: int, frame: object) -> None:
    global stop_requested
    stop_requested = True


def main() -> None:
    global reopen_requested
    path, pid_file = sys.argv[1], sys.argv[2]
    signal.signal(signal.SIGHUP, _on_hup)
    signal.signal(signal.SIGTERM, _on_term)
    handle = open(path, "ab", buffering=0)
    tmp = f"{pid_file}.tmp"
    with open(tmp, "w", encoding="ascii") as pid_handle:
        pid_handle.write(str(os.getpid()))
    os.replace(tmp, pid_file)
    seq = 0
    while not stop_requested:
        if reopen_requested:
            reopen_requested = False
            handle.close()
            handle = open(path, "ab", buffering=0)
        handle.write(f"2026-11-22T03:00:00Z INFO Processing Order {seq} seq={seq}\n".encode())
        seq += 1
        if seq % 200 == 0:
            time.sleep(0.0005)
    handle.close()
    print(seq, flush=True)


if __name__ == "__main__":
    main()
