"""What the endpoint needs: the signing secret (a Connection) and who may answer (config), cached briefly."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

CONFIG = "slack_actions"


@dataclass(frozen=True)
class ActionSettings:
    respondents: dict[str, str] = field(default_factory=dict)
    max_age_seconds: float = 300.0
    max_payload_bytes: int = 262_144
    signing_secret_conn_id: str = "slack_signing_secret"  # noqa: S105 (a Connection id, not a secret)
    ttl_seconds: float = 30.0
    response_url_hosts: tuple[str, ...] = ("hooks.slack.com",)
    #: The Slack API Connection (toilless.yaml ``slack.api_conn_id``) used for chat.update; None: response_url only.
    api_conn_id: str | None = None

    @classmethod
    def from_config(cls, config: dict[str, Any], toilless: dict[str, Any] | None = None) -> ActionSettings:
        respondents = config.get("respondents") or {}
        if not isinstance(respondents, dict):
            raise ValueError("slack_actions.respondents must map Slack user ids to Airflow users")
        return cls(
            respondents={str(slack_id): str(user) for slack_id, user in respondents.items()},
            max_age_seconds=float(config.get("max_age_seconds", 300)),
            max_payload_bytes=int(config.get("max_payload_bytes", 262_144)),
            signing_secret_conn_id=str(config.get("signing_secret_conn_id") or "slack_signing_secret"),
            ttl_seconds=float(config.get("settings_ttl_seconds", 30)),
            response_url_hosts=tuple(str(host) for host in config.get("response_url_hosts") or ("hooks.slack.com",)),
            api_conn_id=((toilless or {}).get("slack") or {}).get("api_conn_id") or None,
        )


class SigningSecret:
    """The secret, never printed: ``repr`` and ``str`` hide it, so a log line or traceback cannot show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SigningSecret(***)"

    __str__ = __repr__


class SettingsProvider:
    """Settings and secret, re-read at most every ``settings_ttl_seconds`` (a Connection and a Variable per press
    would be slow, and Slack wants an answer within 3 seconds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cached: tuple[float, ActionSettings, SigningSecret | None] | None = None

    def get(self) -> tuple[ActionSettings, SigningSecret | None]:
        with self._lock:
            cached = self._cached
        if cached and time.monotonic() - cached[0] < cached[1].ttl_seconds:
            return cached[1], cached[2]
        settings, secret = self._load()
        with self._lock:
            self._cached = (time.monotonic(), settings, secret)
        return settings, secret

    def _load(self) -> tuple[ActionSettings, SigningSecret | None]:
        from airflow.exceptions import AirflowNotFoundException
        from airflow.sdk import BaseHook

        from toilless.common.config import load_config

        settings = ActionSettings.from_config(load_config(CONFIG), load_config("toilless"))
        try:
            password = BaseHook.get_connection(settings.signing_secret_conn_id).password or ""
        except AirflowNotFoundException:
            password = ""
        if not password:
            log.error(
                "No signing secret (Connection %s missing or without password): every Slack press is refused",
                settings.signing_secret_conn_id,
            )
            return settings, None
        return settings, SigningSecret(password)
