"""After a press: update the original message (who answered what and when) and tell the presser what happened.

The message is updated with ``chat.update`` through the Slack provider's ``SlackHook`` (the ``slack.api_conn_id``
Connection: a bot token of the same Slack app), addressed by the channel id and message ts of the interaction
payload. Without that Connection, or when Slack refuses (a message posted through an incoming webhook may not be
editable by the token), the payload's ``response_url`` replaces the original message instead: Slack offers it for
exactly this, for 30 minutes after the press. The presser's own reply (already decided, not allowed) goes to the
``response_url`` as an ephemeral message, seen only by them.

``response_url`` is only called on hosts in ``slack_actions.response_url_hosts`` (Slack's own by default): the
payload is signed, but an outbound request to a URL taken from input is kept to where it can only go to Slack.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from toilless.common import slack

log = logging.getLogger(__name__)

DEFAULT_RESPONSE_URL_HOSTS = ("hooks.slack.com",)


def message_address(payload: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``(channel id, message ts)`` of the message whose button was pressed."""
    container = payload.get("container") or {}
    channel = container.get("channel_id") or (payload.get("channel") or {}).get("id")
    ts = container.get("message_ts") or (payload.get("message") or {}).get("ts")
    return (str(channel) if channel else None, str(ts) if ts else None)


def response_url_allowed(url: Any, hosts: Iterable[str]) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    allowed = {h.lower() for h in hosts}
    return parts.scheme in ("https", "http") and host in allowed and (parts.scheme == "https" or host in _LOOPBACK)


_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class MessageUpdater:
    """Sends the update and the replies. ``api_conn_id``: the Slack API Connection (None: response_url only)."""

    def __init__(self, *, api_conn_id: str | None, response_url_hosts: Iterable[str]) -> None:
        self.api_conn_id = api_conn_id
        self.response_url_hosts = tuple(response_url_hosts)

    def update(self, payload: Mapping[str, Any], message: Mapping[str, Any]) -> str:
        """Replace the original message with ``message``; returns how (``chat.update``, ``response_url``, ``none``)."""
        message = slack.fit_message(message)
        channel, ts = message_address(payload)
        if self.api_conn_id and channel and ts and self._chat_update(channel, ts, message):
            return "chat.update"
        if self._respond(payload, {"replace_original": True, **message}):
            return "response_url"
        log.warning(
            "Could not update the Slack message %s in %s: no API connection and no usable response_url", ts, channel
        )
        return "none"

    def reply(self, payload: Mapping[str, Any], text: str) -> bool:
        """An ephemeral reply only the presser sees."""
        body = {"response_type": "ephemeral", "replace_original": False, "text": slack.escape(text, 2000)}
        return self._respond(payload, body)

    def _chat_update(self, channel: str, ts: str, message: Mapping[str, Any]) -> bool:
        from airflow.exceptions import AirflowNotFoundException
        from airflow.providers.slack.hooks.slack import SlackHook

        try:
            SlackHook(slack_conn_id=self.api_conn_id).call(
                "chat.update",
                json={"channel": channel, "ts": ts, "text": message.get("text", ""), "blocks": message.get("blocks")},
            )
            return True
        except AirflowNotFoundException:
            return False
        except Exception as err:  # slack_sdk's SlackApiError, network errors: fall back to response_url
            log.warning("chat.update of %s in %s failed (%s); trying response_url", ts, channel, type(err).__name__)
            return False

    def _respond(self, payload: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
        import requests

        url = payload.get("response_url")
        if not response_url_allowed(url, self.response_url_hosts):
            return False
        try:
            response = requests.post(str(url), json=dict(body), timeout=10)
        except requests.RequestException as err:
            log.warning("Slack response_url failed: %s", type(err).__name__)
            return False
        if response.status_code != 200:
            log.warning("Slack response_url answered %s", response.status_code)
            return False
        return True
