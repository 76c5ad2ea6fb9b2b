"""SQLite connect arguments for the single-machine metadata DB of ``make run`` ([database] sql_alchemy_connect_args).

sqlite3 waits 5 s for the write lock by default. On 2 cores the scheduler's write bursts (a batch of DAG runs starting)
outlast that, and the API server answers 500 "database is locked". Waiting longer turns those errors into short waits.
"""

from __future__ import annotations

#: Seconds a connection waits for SQLite's write lock.
CONNECT_ARGS: dict[str, object] = {"timeout": 30}
