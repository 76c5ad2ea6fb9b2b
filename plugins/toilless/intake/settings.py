"""The intake's settings: ``alert_intake`` and ``toilless`` config, the alert routes and the caller secret, cached.

Re-read at most every ``settings_ttl_seconds`` (routes also when their file changes), so a storm does not read
Variables and YAML for every delivery.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from toilless.intake import decisions, routing
from toilless.intake.auth import Credentials
from toilless.intake.models import Alert

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntakeSettings:
    intake: dict[str, Any]
    toilless: dict[str, Any]
    routes: routing.RouteTable
    window: Any  # WeeklyWindow | None

    @property
    def max_payload_bytes(self) -> int:
        return int(self.intake.get("max_payload_bytes", 1024 * 1024))

    @cached_property
    def link_hosts(self) -> frozenset[str]:
        """The hosts intake messages may link to, worked out once per settings load (``settings_ttl_seconds``).

        Per alert, reading the Airflow UI's host from Airflow's configuration cost about 2 ms of the worker's CPU
        for every acknowledgement of a storm (issue 12); the settings it depends on are this object's.
        """
        return decisions.link_hosts_for(self.toilless, self.intake) | _airflow_ui_host(self)

    @cached_property
    def airflow_base_url(self) -> str:
        """The Airflow UI's base URL (toilless.common.reporting.airflow_base_url), once per settings load: every
        started or skipped alert's acknowledgement links to a run."""
        from toilless.common.reporting import airflow_base_url

        return airflow_base_url(self.toilless)


class SettingsProvider:
    """Settings, routes and the caller secret, re-read at most every ``ttl`` seconds (routes also on file change)."""

    def __init__(self, *, ttl: float | None = None, routes_path: Path | None = None) -> None:
        self._ttl = ttl
        self._routes_path = routes_path
        self._lock = threading.Lock()
        self._settings: tuple[float, IntakeSettings] | None = None
        self._routes: tuple[Path, float, routing.RouteTable] | None = None
        self._credentials: tuple[float, Credentials | None] | None = None

    def get(self) -> IntakeSettings:
        with self._lock:
            cached = self._settings
            if cached and time.monotonic() - cached[0] < self._ttl_for(cached[1].intake):
                return cached[1]
        settings = self._load()
        with self._lock:
            self._settings = (time.monotonic(), settings)
        return settings

    def fresh(self) -> IntakeSettings | None:
        """The cached settings if still fresh, else None; never reads anything (safe in an event loop)."""
        with self._lock:
            cached = self._settings
        if cached and time.monotonic() - cached[0] < self._ttl_for(cached[1].intake):
            return cached[1]
        return None

    def fresh_credentials(self) -> Credentials | None:
        """The cached credentials if fresh and present, else None (then call :meth:`credentials`); reads nothing."""
        with self._lock:
            cached, settings = self._credentials, self._settings
        if cached and settings and time.monotonic() - cached[0] < self._ttl_for(settings[1].intake):
            return cached[1]
        return None

    def credentials(self) -> Credentials | None:
        """The secret callers must present; None when the Connection is missing (the intake then answers 503)."""
        with self._lock:
            cached = self._credentials
        settings = self.get()
        if cached and time.monotonic() - cached[0] < self._ttl_for(settings.intake):
            return cached[1]
        from airflow.exceptions import AirflowNotFoundException
        from airflow.sdk import BaseHook

        conn_id = settings.intake.get("auth_conn_id", "toilless_alert_intake")
        try:
            connection = BaseHook.get_connection(conn_id)
            credentials: Credentials | None = Credentials(connection.password or "", connection.login or "")
            if not credentials.password:
                log.error("Connection %s has no password: the alert intake refuses every call", conn_id)
                credentials = None
        except AirflowNotFoundException:
            log.error("No Connection %s: the alert intake refuses every call until it exists", conn_id)
            credentials = None
        with self._lock:
            self._credentials = (time.monotonic(), credentials)
        return credentials

    def _ttl_for(self, intake: dict[str, Any]) -> float:
        return self._ttl if self._ttl is not None else float(intake.get("settings_ttl_seconds", 30))

    def _load(self) -> IntakeSettings:
        from toilless.common.config import include_path, load_config
        from toilless.common.gate import maintenance_window

        intake = load_config("alert_intake")
        toilless = load_config("toilless")
        path = self._routes_path or include_path(intake.get("routes_file", "alert_routes.yaml"))
        mtime = path.stat().st_mtime if path.exists() else -1.0
        cached = self._routes
        if cached and cached[0] == path and cached[1] == mtime:
            routes = cached[2]
        else:
            routes = routing.RouteTable.from_file(path)
            self._routes = (path, mtime, routes)
            log.info("Loaded %d alert routes from %s", len(routes.routes), path)
        window = maintenance_window(toilless)
        return IntakeSettings(intake=intake, toilless=toilless, routes=routes, window=window)


def facts_for(
    alert: Alert, external_url: str, settings: IntakeSettings, route: routing.Route | None = None
) -> tuple[decisions.AlertFacts, str]:
    """The alert's facts for its acks, and the channel they go to. A triage route's acks go to the non-urgent
    channel even in prod: whether anyone is woken is what triage decides (noise pages nobody; a real problem pages
    through its runbook, docs/triage.md)."""
    environment = decisions.environment_for(alert.labels, settings.intake)
    facts = decisions.AlertFacts(
        alert=alert,
        priority=decisions.priority_for(alert.labels, settings.intake),
        environment=environment,
        links=decisions.links_for(alert, environment, external_url, settings.intake),
        link_hosts=settings.link_hosts,
    )
    return facts, decisions.channel_for(environment, settings.intake, triage=bool(route and route.triage))


def _airflow_ui_host(settings: IntakeSettings) -> frozenset[str]:
    """The Airflow UI's host (``airflow_base_url`` or Airflow's ``[api] base_url``): run links point there."""
    from urllib.parse import urlsplit

    host = urlsplit(settings.airflow_base_url).hostname
    return frozenset({host.lower()}) if host else frozenset()
