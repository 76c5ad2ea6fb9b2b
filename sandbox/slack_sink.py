"""A local Slack: accepts incoming-webhook posts and the few Web API calls the Slack provider makes.

Each message is kept in memory, appended to a JSONL file when one is given, and optionally echoed as one line, so a
person (``make run``) or a test sees exactly what would have been posted.

Webhook URLs look like ``http://127.0.0.1:PORT/services/<channel>``; the channel name is recorded with the message.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from sandbox.http import LoopbackHTTPServer, Response

#: Message timestamps unique within the process, like Slack's ("<seconds>.<sequence>").
_TS_SEQUENCE = itertools.count(1)


class SlackSink(LoopbackHTTPServer):
    """HTTP server that records Slack messages. Start with :meth:`start`, stop with :meth:`stop`."""

    name = "slack-sink"

    def __init__(
        self,
        *,
        port: int = 0,
        jsonl_path: Path | None = None,
        echo: bool = False,
        files_dir: Path | None = None,
    ) -> None:
        super().__init__(port)
        self.jsonl_path = jsonl_path
        self.files_dir = files_dir
        self.echo = echo
        self._messages: list[dict[str, Any]] = []
        self._uploads: dict[str, dict[str, Any]] = {}
        self._lock = threading.Condition()
        #: Status the next webhook posts get (tests use it to make Slack fail).
        self.fail_with_status: int | None = None

    def handle(self, method: str, path: str, headers: Message, body: bytes) -> Response:
        status, payload = self._handle(path, headers.get("Content-Type", ""), body)
        if isinstance(payload, bytes):
            return status, [("Content-Type", "text/plain")], payload
        return status, [("Content-Type", "application/json")], json.dumps(payload).encode()

    def webhook_url(self, channel: str) -> str:
        return f"{self.url}/services/{channel}"

    def webhook_connection(self, channel: str) -> dict[str, Any]:
        """Airflow Connection (JSON form) of a ``slackwebhook`` pointing at this sink for ``channel``."""
        # A password containing "://" is used by the Slack provider as the full webhook URL.
        return {"conn_type": "slackwebhook", "password": self.webhook_url(channel)}

    def api_connection(self) -> dict[str, Any]:
        """Airflow Connection (JSON form) of a ``slack`` API-token connection whose Web API is this sink."""
        return {"conn_type": "slack", "password": "xoxb-sandbox", "extra": {"base_url": f"{self.url}/api/"}}

    # -- reading ---------------------------------------------------------------------------------------------------
    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self._messages if channel is None or m["channel"] == channel]

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], *, count: int = 1, timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        """Wait until ``count`` messages match ``predicate``; return them (raises TimeoutError otherwise)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [m for m in self._messages if predicate(m)]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(found)} of {count} expected Slack messages after {timeout}s: {found}")
                self._lock.wait(remaining)

    # -- handling --------------------------------------------------------------------------------------------------
    def _handle(self, path: str, content_type: str, body: bytes) -> tuple[int, Any]:
        if path.startswith("/services/"):
            if self.fail_with_status:
                return self.fail_with_status, b"sink told to fail"
            channel = path.split("/")[2] or "unknown"
            try:
                payload = json.loads(body or b"{}")
            except json.JSONDecodeError:
                return 400, b"invalid_payload"
            self._record({"kind": "webhook", "channel": channel, **_message_fields(payload)})
            return 200, b"ok"
        if path.startswith("/response/"):
            # A press's response_url (the press CLI points it here): replace_original updates the message it names.
            try:
                payload = json.loads(body or b"{}")
            except json.JSONDecodeError:
                return 400, b"invalid_payload"
            ts = path.split("/")[2]
            if payload.get("replace_original"):
                self._update(ts, payload, via="response_url")
            else:
                self._record(
                    {"kind": "response", "channel": self._channel_of(ts), "ts_of": ts, **_message_fields(payload)}
                )
            return 200, b"ok"
        if path.startswith("/upload/"):
            file_id = path.split("/")[2]
            with self._lock:
                upload = self._uploads.setdefault(file_id, {})
            upload["bytes"] = len(body)
            if self.files_dir is not None:
                self.files_dir.mkdir(parents=True, exist_ok=True)
                target = self.files_dir / f"{file_id}-{upload.get('filename', 'file')}"
                target.write_bytes(body)
                upload["saved_as"] = str(target)
            return 200, b"OK"
        if path.startswith("/api/"):
            return 200, self._api(path[len("/api/") :].split("?")[0], content_type, body)
        return 404, b"not found"

    def _api(self, method: str, content_type: str, body: bytes) -> dict[str, Any]:
        if "json" in content_type:
            params = json.loads(body or b"{}")
        else:
            params = {key: values[-1] for key, values in parse_qs(body.decode()).items()}
        if method == "auth.test":
            return {"ok": True, "team": "sandbox", "user": "toilless", "bot_id": "B0SANDBOX"}
        if method == "conversations.list":
            # The Slack provider resolves "#name" (slack.api_channels) to an id through this list.
            return {"ok": True, "channels": _configured_channels(), "response_metadata": {"next_cursor": ""}}
        if method == "files.getUploadURLExternal":
            file_id = f"F{uuid.uuid4().hex[:10].upper()}"
            with self._lock:
                self._uploads[file_id] = {"filename": params.get("filename", "file")}
            return {"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            files = params.get("files")
            files = json.loads(files) if isinstance(files, str) else files or []
            uploads = [{**f, **self._uploads.get(f.get("id", ""), {})} for f in files]
            self._record(
                {
                    "kind": "file",
                    "channel": str(params.get("channel_id") or params.get("channels") or "unknown"),
                    "text": params.get("initial_comment", ""),
                    "files": uploads,
                }
            )
            return {"ok": True, "files": [{"id": f.get("id"), "title": f.get("title")} for f in files]}
        if method == "chat.update":
            ts = str(params.get("ts", ""))
            if not self._update(ts, params, via="chat.update"):
                return {"ok": False, "error": "message_not_found"}
            return {"ok": True, "channel": params.get("channel"), "ts": ts}
        if method == "chat.postMessage":
            recorded = self._record(
                {"kind": "api", "channel": str(params.get("channel", "unknown")), **_message_fields(params)}
            )
            return {"ok": True, "channel": params.get("channel"), "ts": recorded["ts"]}
        return {"ok": True}

    def buttons(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Every button received, newest message last: its label, action_id, value, and the message's ts/channel."""
        return [
            {**button, "ts": m["ts"], "channel": m["channel"]}
            for m in self.messages(channel)
            if m.get("kind") in ("webhook", "api")
            for button in m.get("buttons", [])
        ]

    def message(self, ts: str) -> dict[str, Any] | None:
        """The message posted with ``ts`` (with its updates applied; ``updates`` lists them)."""
        with self._lock:
            return next((m for m in self._messages if m.get("ts") == ts and m.get("kind") != "update"), None)

    def _channel_of(self, ts: str) -> str:
        found = self.message(ts)
        return found["channel"] if found else "unknown"

    def _update(self, ts: str, payload: dict[str, Any], *, via: str) -> bool:
        """chat.update / response_url replace_original: the message gets the new content; the update is recorded."""
        fields = _message_fields(payload)
        with self._lock:
            original = next((m for m in self._messages if m.get("ts") == ts and m.get("kind") != "update"), None)
            if original is None:
                return False
            original.setdefault("updates", []).append({"via": via, **fields})
            original.update({"text": fields["text"], "blocks": fields["blocks"], "buttons": fields["buttons"]})
        self._record({"kind": "update", "via": via, "channel": original["channel"], "ts": ts, **fields})
        return True

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        message = {"received_at": time.time(), **message}
        # Every message gets a ts as Slack's have (a press names its message by channel and ts).
        message.setdefault("ts", f"{int(time.time())}.{next(_TS_SEQUENCE):06d}")
        with self._lock:
            self._messages.append(message)
            self._lock.notify_all()
            if self.jsonl_path is not None:
                self.jsonl_path.parent.mkdir(parents=True, exist_ok=True)
                with self.jsonl_path.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(message) + "\n")
        if self.echo:
            first = (message.get("text") or "").strip().splitlines()
            print(f"[slack #{message['channel']}] {first[0][:160] if first else '(blocks only)'}", flush=True)
        return message


def _message_fields(payload: dict[str, Any]) -> dict[str, Any]:
    blocks = payload.get("blocks")
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    return {
        "text": payload.get("text", ""),
        "blocks": blocks or [],
        "thread_ts": payload.get("thread_ts"),
        "buttons": _buttons(blocks or []),
    }


def _buttons(blocks: list[Any]) -> list[dict[str, Any]]:
    """The buttons of ``actions`` blocks, as a person would see and press them."""
    found = []
    for block in blocks:
        if isinstance(block, dict) and block.get("type") == "actions":
            for element in block.get("elements") or []:
                if isinstance(element, dict) and element.get("type") == "button":
                    found.append(
                        {
                            "label": (element.get("text") or {}).get("text", ""),
                            "action_id": element.get("action_id", ""),
                            "value": element.get("value", ""),
                            "block_id": block.get("block_id", ""),
                        }
                    )
    return found


def _configured_channels() -> list[dict[str, str]]:
    """The channels named in include/config/toilless.yaml (slack.api_channels), with made-up ids."""
    from toilless.common.config import read_defaults

    names = read_defaults("toilless").get("slack", {}).get("api_channels", {}).values()
    return [{"id": f"C{name.lstrip('#').upper()}", "name": name.lstrip("#")} for name in names]
