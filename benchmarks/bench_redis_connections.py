"""redis_connections' diagnosis against 2,000 real client connections: CLIENT LIST read, parsed, grouped and judged
(and the idle ones chosen) as the DAG does, through ``toilless.hooks.redis``."""

from __future__ import annotations

import json
import os
import socket
import statistics
import time
from pathlib import Path
from typing import Any

from sandbox.ports import HOST
from sandbox.redis_server import RedisServer

CONNECTIONS = 2_000
NAMES = 10
GOAL_SECONDS = 1.0
REPEATS = 5


def _open(port: int, name: str) -> socket.socket:
    sock = socket.create_connection((HOST, port))
    command = f"*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n${len(name)}\r\n{name}\r\n".encode()
    sock.sendall(command)
    assert sock.recv(16).startswith(b"+OK")
    return sock


def run(work: Path) -> list[dict[str, Any]]:
    from toilless.common.config import read_defaults

    sockets: list[socket.socket] = []
    with RedisServer(maxclients=CONNECTIONS + 100) as server:
        try:
            for index in range(CONNECTIONS):
                sockets.append(_open(server.port, f"app-{index % NAMES}"))
            os.environ["AIRFLOW_CONN_REDIS_BENCH"] = json.dumps(server.airflow_connection())
            from toilless.hooks.redis import RedisHook
            from toilless.sops.redis_connections import clients, health

            settings = read_defaults("redis_connections")
            hook = RedisHook(redis_conn_id="redis_bench", client_name="toilless-bench")
            own_id = hook.own_client_id()
            timings = []
            for _ in range(REPEATS):
                started = time.perf_counter()
                info_clients, stats = hook.info("clients"), hook.info("stats")
                listed, total = clients.parse_client_list(hook.client_list(), limit=int(settings["client_list_max"]))
                others = [client for client in listed if client.id != own_id]
                per_name = clients.idle_per_name(others, 1)
                measured = health.figures(info_clients, stats, stats, seconds=1.0)
                health.assess(measured, per_name, pools={}, thresholds=settings["thresholds"], idle_seconds=1)
                clients.group(others, top=10)
                chosen = clients.choose_idle(others, names=["app-1", "app-2"], idle_seconds=0, own_id=own_id)
                timings.append(time.perf_counter() - started)
            hook.close()
        finally:
            for sock in sockets:
                sock.close()
    median = statistics.median(timings)
    return [
        {
            "benchmark": "redis_connections",
            "metric": f"diagnosis against {CONNECTIONS:,} connections (INFO + CLIENT LIST parsed, grouped, judged)",
            "value": f"{median * 1000:.0f} ms (median of {REPEATS})",
            "goal": f"< {GOAL_SECONDS:g} s",
            "met": median < GOAL_SECONDS,
            "notes": f"{total:,} CLIENT LIST lines; {len(chosen):,} idle of 2 names chosen; max {max(timings) * 1000:.0f} ms",
        }
    ]


if __name__ == "__main__":
    for row in run(Path("/tmp")):
        print(row)
