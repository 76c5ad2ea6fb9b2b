"""Prometheus Alertmanager's silences through its API v2, over an HTTP Connection (http provider's HttpHook).

System calls only: which alert to silence, for how long and why is decided in ``toilless.sops.triage_alert``. Every
silence is checked against API v2's contract (``toilless.sops.triage_alert.silences.check_silence``) before it is
sent; silence ids are UUIDs before they reach a URL path.

Connection (``alertmanager_default``, type ``http``): host/schema/port of Alertmanager (``http://alertmanager:9093``);
login/password for basic auth if a proxy in front asks for it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from airflow.providers.http.hooks.http import HttpHook

from toilless.sops.triage_alert.silences import check_silence, check_silence_id

log = logging.getLogger(__name__)

#: Alertmanager answers silences in milliseconds; a hung one must not hold the task.
TIMEOUT_SECONDS = 15
MAX_LISTED = 5000


class AlertmanagerHook(HttpHook):
    """Create, list and expire Alertmanager silences (API v2).

    :param alertmanager_conn_id: HTTP Connection to Alertmanager.
    """

    conn_name_attr = "alertmanager_conn_id"
    default_conn_name = "alertmanager_default"
    conn_type = "http"
    hook_name = "Alertmanager"

    def __init__(self, *, alertmanager_conn_id: str = default_conn_name) -> None:
        super().__init__(method="GET", http_conn_id=alertmanager_conn_id)
        self.alertmanager_conn_id = alertmanager_conn_id

    def _call(self, method: str, endpoint: str, *, json: Any = None, params: Any = None) -> Any:
        self.method = method
        kwargs: dict[str, Any] = {} if json is None else {"json": json}
        response = self.run(
            endpoint,
            data=params if method == "GET" else None,  # HttpHook sends a GET's data as its query string
            headers={"Accept": "application/json"},
            extra_options={"timeout": TIMEOUT_SECONDS, "check_response": True},
            **kwargs,
        )
        return response.json() if response.content else None

    def create_silence(self, body: dict[str, Any], *, now: datetime | None = None) -> str:
        """``POST /api/v2/silences``: the new silence's id. The body is checked against the contract first."""
        check_silence(body, now=now or datetime.now(UTC))
        answer = self._call("POST", "/api/v2/silences", json=body)
        silence_id = check_silence_id((answer or {}).get("silenceID", ""))
        log.info("Created Alertmanager silence %s", silence_id)
        return silence_id

    def list_silences(self, *, filters: list[str] | None = None) -> list[dict[str, Any]]:
        """``GET /api/v2/silences`` (optionally ``filter=`` matchers, e.g. ``alertname="X"``): GettableSilences."""
        params = [("filter", text) for text in filters or []]
        answer = self._call("GET", "/api/v2/silences", params=params or None)
        if not isinstance(answer, list):
            raise ValueError("Alertmanager answered GET /api/v2/silences with something other than a list")
        return answer[:MAX_LISTED]

    def get_silence(self, silence_id: str) -> dict[str, Any]:
        """``GET /api/v2/silence/{id}``."""
        return self._call("GET", f"/api/v2/silence/{check_silence_id(silence_id)}")

    def expire_silence(self, silence_id: str) -> None:
        """``DELETE /api/v2/silence/{id}``: the silence ends now (Alertmanager keeps it as expired)."""
        self._call("DELETE", f"/api/v2/silence/{check_silence_id(silence_id)}")
        log.info("Expired Alertmanager silence %s", silence_id)
