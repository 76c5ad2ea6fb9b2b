"""What ``make run`` prints: the banner, errors, and one line per finished DAG run. Everything else goes to files.

Airflow's components write to ``.airflow/logs/airflow.log``, moto's access log goes to ``.airflow/sandbox/moto.log``
and Slack messages to ``.airflow/sandbox/slack.jsonl``; a person watching the console sees that runs happen and how
they ended, with a link to the run, and nothing else.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("sandbox")

POLL_SECONDS = 5.0
_ESCAPES = str.maketrans({chr(code): " " for code in range(32)} | {"\x7f": " "})


def to_file(logger_name: str, path: Path) -> None:
    """Send a library's logger (werkzeug's access log, say) to ``path`` instead of the console."""
    path.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(logger_name)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def run_line(run: dict[str, Any], base_url: str) -> str:
    """One line for a finished run: DAG, state, duration, run id, link. Control characters cannot reach the terminal."""
    started, ended = run.get("start_date"), run.get("end_date")
    duration = ""
    if started and ended:
        seconds = (_parse(ended) - _parse(started)).total_seconds()
        duration = f" in {seconds:.0f} s"
    dag_id, run_id = str(run.get("dag_id", "?")), str(run.get("dag_run_id", "?"))
    link = f"{base_url}/dags/{urllib.parse.quote(dag_id)}/runs/{urllib.parse.quote(run_id)}"
    state = str(run.get("state", "?"))
    line = f"[run] {dag_id}: {state.upper() if state == 'failed' else state}{duration}  {run_id}  {link}"
    return line.translate(_ESCAPES)


class RunSummaries:
    """Polls Airflow's REST API for runs that ended since the console started and prints one line for each."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        out: Callable[[str], None] = lambda line: print(line, flush=True),
        since: datetime | None = None,
    ) -> None:
        self.base_url = base_url
        self._credentials = {"username": username, "password": password}
        self._out = out
        self._since = since or datetime.now(UTC)
        self._seen: set[tuple[str, str]] = set()
        self._token: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> int:
        """Print the runs that ended since the last poll; returns how many lines were printed."""
        query = urllib.parse.urlencode(
            [
                ("state", "success"),
                ("state", "failed"),
                ("end_date_gte", self._since.isoformat()),
                ("order_by", "end_date"),
                ("limit", "100"),
            ]
        )
        runs = self._get(f"/api/v2/dags/~/dagRuns?{query}").get("dag_runs", [])
        printed = 0
        for run in runs:
            key = (str(run.get("dag_id")), str(run.get("dag_run_id")))
            if key in self._seen:
                continue
            self._seen.add(key)
            self._out(run_line(run, self.base_url))
            printed += 1
        return printed

    def start(self) -> RunSummaries:
        self._thread = threading.Thread(target=self._loop, name="run-summaries", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        failures = 0
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.poll_once()
                failures = 0
            except (urllib.error.URLError, OSError, ValueError) as err:
                failures += 1
                self._token = None
                if failures == 3:  # once, not every 5 s: a busy API server answers again soon
                    log.warning("Run summaries: Airflow's API did not answer (%s); still trying", err)

    def _get(self, path: str) -> dict[str, Any]:
        if self._token is None:
            request = urllib.request.Request(
                f"{self.base_url}/auth/token",
                data=json.dumps(self._credentials).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                self._token = json.load(response)["access_token"]
        request = urllib.request.Request(f"{self.base_url}{path}", headers={"Authorization": f"Bearer {self._token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
