"""postgres_connections' diagnosis queries against 2,000 real sessions on a real PostgreSQL server.

The server runs with max_connections 2,100; this process holds 2,000 sessions open: 1,300 idle, 500 idle in a
transaction, 150 running a query, and 50 waiting on row locks held by 10 others (pg_blocking_pids has real work),
spread over 40 applications and three roles. Timed: each query the DAG runs (include/sql/postgres_connections/,
bound exactly as steps.diagnose binds them, through the same judgement), median of five rounds.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sandbox.postgres import PostgresServer
from sandbox.postgres_connections_data import APP_ROLE, SessionStorm, ensure_roles

SESSIONS = 2_000
ROUNDS = 5
#: Every 15 minutes, on a server already short of connections: the whole diagnosis must be cheap.
GOAL_TOTAL_MS = 500.0
SETTINGS = {
    "postgres_conn_id": "bench",
    "long_query_seconds": 1.0,
    "idle_in_transaction_seconds": 1.0,
    "idle_seconds": 1.0,
    "end_sessions": True,
    "end_idle": False,
    "allowed_applications": [f"app_{index:02d}" for index in range(0, 40, 2)],
    "max_terminations_per_run": 5,
    "warning_usage_pct": 80.0,
    "critical_usage_pct": 90.0,
    "pools": {f"app_{index:02d}": 40 for index in range(40)},
    "query_chars": 200,
    "max_listed": 15,
    "max_rows": 1000,
}


class _Records:
    """What steps.diagnose needs of the hook (records), over one psycopg connection, as the hook opens it."""

    def __init__(self, server: PostgresServer) -> None:
        import psycopg

        dsn = server.dsn("postgres")
        self.connection = psycopg.connect(
            host=dsn["host"], port=dsn["port"], user=dsn["user"], dbname=dsn["dbname"], autocommit=True
        )
        self.connection.execute("SELECT set_config('application_name', 'toilless_bench', false)")

    def records(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, dict(parameters or {}))
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def close(self) -> None:
        self.connection.close()


def _storm(server: PostgresServer, storm: SessionStorm) -> None:
    setup = server.connect("postgres")
    setup.autocommit = True
    with setup.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_rows (id int PRIMARY KEY, n int)")
        cursor.execute("INSERT INTO bench_rows SELECT g, 0 FROM generate_series(1, 10) g ON CONFLICT DO NOTHING")
        cursor.execute(f"GRANT ALL ON bench_rows TO {APP_ROLE}")
    setup.close()
    for row in range(1, 11):
        storm.open(1, application="app_holder")
        holder = storm.connections[-1]
        holder.autocommit = False  # the row lock is held until the transaction ends
        with holder.cursor() as cursor:
            cursor.execute("UPDATE bench_rows SET n = n + 1 WHERE id = %s", (row,))
        for _ in range(5):
            storm.open(1, application="app_waiter")
            waiter = storm.connections[-1]
            waiter.autocommit = True
            threading.Thread(target=_wait, args=(waiter, row), daemon=True).start()
    modes = ["idle"] * 1300 + ["idle_in_transaction"] * 500 + ["active"] * 150
    for index, mode in enumerate(modes):
        user = "postgres" if index % 10 == 0 else APP_ROLE
        storm.open(1, application=f"app_{index % 40:02d}", user=user, mode=mode, sleep_seconds=600)


def _wait(connection: Any, row: int) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("UPDATE bench_rows SET n = n + 1 WHERE id = %s", (row,))
    except Exception:  # noqa: S110 - ended when the benchmark stops
        pass


def run(work: Path) -> list[dict[str, Any]]:
    from toilless.sops.postgres_connections.steps import diagnose

    # Its own temporary directory (not ``work``): PostgreSQL runs as the postgres user, who may not enter ``work``.
    server = PostgresServer(settings={"max_connections": "2100", "max_locks_per_transaction": "128"})
    with server, SessionStorm(server) as storm:
        ensure_roles(server)
        started = time.perf_counter()
        _storm(server, storm)
        opened = time.perf_counter() - started
        time.sleep(1.5)  # every session is past the 1 s ages
        client = _Records(server)
        rounds = []
        try:
            for _ in range(ROUNDS):
                begun = time.perf_counter()
                diagnosis = diagnose(client, SETTINGS)  # type: ignore[arg-type]
                rounds.append((time.perf_counter() - begun, diagnosis))
        finally:
            client.close()
    per_query = {
        name: statistics.median(d["timings"][name] for _, d in rounds) * 1000 for name in rounds[0][1]["timings"]
    }
    total_ms = statistics.median(seconds for seconds, _ in rounds) * 1000
    last = rounds[-1][1]
    rows = [
        {
            "benchmark": "postgres_connections",
            "metric": f"whole diagnosis (4 queries + judgement), {SESSIONS:,} sessions",
            "value": f"{total_ms:.0f} ms",
            "goal": f"< {GOAL_TOTAL_MS:.0f} ms",
            "met": total_ms < GOAL_TOTAL_MS,
            "notes": (
                f"median of {ROUNDS}; {last['usage']['client_sessions']:,} client sessions seen, "
                f"{last['idle_in_transaction_total']} idle in transaction, {last['long_queries_total']} long queries, "
                f"{len(last['chains'])} blocking roots, {len(last['to_end'])} planned to end; storm opened in {opened:.0f} s"
            ),
        }
    ]
    for name, milliseconds in per_query.items():
        rows.append(
            {
                "benchmark": "postgres_connections",
                "metric": f"query {name}.sql, {SESSIONS:,} sessions",
                "value": f"{milliseconds:.1f} ms",
                "goal": "-",
                "met": None,
                "notes": f"median of {ROUNDS}",
            }
        )
    return rows


if __name__ == "__main__":
    import tempfile

    for row in run(Path(tempfile.mkdtemp())):
        print(row)
