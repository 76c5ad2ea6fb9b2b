"""Where the incident tables live: a Connection of their own (``toilless_incidents``), not Airflow's metadata DB.

Why not the metadata DB (as the intake's tables are): the intake runs in the API server, which holds a metadata-DB
session; the incident record is mostly written from *tasks* (the action gate, the report helpers, the approval
operator), and Airflow 3 tasks have no metadata-DB session (the Task SDK talks to the Execution API, and on a
Celery worker the database may not even be reachable). A Connection reaches every process the same way. On
``make run``'s SQLite it also keeps these writes off the one write lock the scheduler needs (their own file), and
Airflow's migrations and ``airflow db clean`` never touch them.

* ``make run`` / tests: no Connection needed: ``$AIRFLOW_HOME/toilless_incidents.db`` (SQLite, WAL).
* distributed: a ``postgres`` Connection ``toilless_incidents`` (the same server as Airflow's DB is fine, its own
  database or schema); ``TOILLESS_INCIDENTS_DB_URL`` (a SQLAlchemy URL) wins over both, for tests and benches.

Every engine has short timeouts: a slow or absent database makes a write fail fast into the outbox instead of
holding the runbook that records it.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CONN_ID = "toilless_incidents"
URL_ENV = "TOILLESS_INCIDENTS_DB_URL"
#: Seconds a write may wait (SQLite lock, PostgreSQL connect and statement) before it goes to the outbox.
WRITE_TIMEOUT_SECONDS = 3

_engines: dict[str, Any] = {}
_lock = threading.Lock()
_resolved_url: list[str] = []


def database_url() -> str:
    """The SQLAlchemy URL of the incident tables (resolved once per process; :func:`reset` forgets it)."""
    if _resolved_url:
        return _resolved_url[0]
    url = os.environ.get(URL_ENV) or _url_from_connection() or default_sqlite_url()
    _resolved_url.append(url)
    return url


def default_sqlite_url() -> str:
    home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")
    return f"sqlite:///{home / 'toilless_incidents.db'}"


def _url_from_connection() -> str | None:
    try:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(CONN_ID)
    except Exception:
        log.info("No Connection %s: the incident record uses %s", CONN_ID, default_sqlite_url())
        return None
    if conn.conn_type == "sqlite":
        return f"sqlite:///{conn.host}"
    from sqlalchemy.engine import URL

    return URL.create(
        "postgresql+psycopg2",
        username=conn.login or None,
        password=conn.password or None,
        host=conn.host or None,
        port=conn.port or None,
        database=conn.schema or None,
    ).render_as_string(hide_password=False)


def engine(url: str | None = None) -> Any:
    """A cached engine for ``url`` (default :func:`database_url`), with short timeouts."""
    url = url or database_url()
    found = _engines.get(url)
    if found is not None:
        return found
    with _lock:
        if url not in _engines:
            _engines[url] = _make_engine(url)
        return _engines[url]


def _make_engine(url: str) -> Any:
    from sqlalchemy import create_engine, event

    if url.startswith("sqlite"):
        made = create_engine(url, connect_args={"timeout": WRITE_TIMEOUT_SECONDS, "check_same_thread": False})

        @event.listens_for(made, "connect")
        def _pragmas(dbapi_connection: Any, _: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers (the handoff) never block a writer
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return made
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=2,
        max_overflow=2,
        pool_timeout=WRITE_TIMEOUT_SECONDS,
        connect_args={
            "connect_timeout": WRITE_TIMEOUT_SECONDS,
            "options": f"-c statement_timeout={WRITE_TIMEOUT_SECONDS * 1000}",
            "application_name": "toilless-incidents",
        },
    )


def reset() -> None:
    """Forget the resolved URL and dispose every engine (tests, and a process that changed its settings)."""
    with _lock:
        for made in _engines.values():
            made.dispose()
        _engines.clear()
        _resolved_url.clear()
