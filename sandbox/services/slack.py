"""Slack: every configured channel's webhook Connection points at the local sink; buttons can be pressed.

The sink records the buttons of every message. A signing secret is made for the sandbox (a Connection, and a file
the press command reads), and the sandbox's Slack user ``U0SANDBOX`` answers as Airflow's ``admin``:
``python -m toilless.slack_actions.press --sandbox <dir> --button Approve`` presses the newest Approve button.
"""

from __future__ import annotations

import json
import os
import secrets
from typing import Any

from sandbox.service import SandboxContext, ServerService
from sandbox.slack_sink import SlackSink

PRESS_USER = "U0SANDBOX"


class SlackService(ServerService):
    name = "slack"
    description = "Slack webhook sink"
    published_as = "slack_sink"

    @property
    def sink(self) -> SlackSink | None:
        return self.server

    def launch(self, ctx: SandboxContext) -> SlackSink:
        return SlackSink(
            port=ctx.port(5056),
            jsonl_path=ctx.home / "slack.jsonl",
            files_dir=ctx.home / "slack_files",
            echo=False,  # the console shows one line per run; the messages themselves are in slack.jsonl
        )

    def signing_secret(self, ctx: SandboxContext) -> str:
        """The sandbox's Slack signing secret: made once, kept in a file only its owner reads."""
        path = ctx.home / "slack_signing_secret"
        if not path.exists():
            ctx.home.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(secrets.token_hex(32))
        (ctx.home / "slack_press.json").write_text(json.dumps({"sink_url": self.running().url}), encoding="utf-8")
        return path.read_text(encoding="utf-8").strip()

    def connections(self, ctx: SandboxContext) -> dict[str, dict[str, Any]]:
        from toilless.common.config import read_defaults

        sink = self.running()
        slack = read_defaults("toilless")["slack"]
        conns = {conn_id: sink.webhook_connection(name) for name, conn_id in slack["channels"].items()}
        conns[slack["api_conn_id"]] = sink.api_connection()
        actions = read_defaults("slack_actions")
        conns[actions["signing_secret_conn_id"]] = {"conn_type": "generic", "password": self.signing_secret(ctx)}
        return conns

    def variables(self, ctx: SandboxContext) -> dict[str, str]:
        # The press command's user answers as the sandbox admin; response_url may point at the local sink.
        override = {"respondents": {PRESS_USER: "admin"}, "response_url_hosts": ["hooks.slack.com", "127.0.0.1"]}
        return {"toilless_slack_actions": json.dumps(override)}

    def summary(self, ctx: SandboxContext) -> str:
        url = ctx.published.get("airflow_url", "http://127.0.0.1:8080")
        return (
            f"Slack sink on {self.running().url}: every message is appended to {ctx.home / 'slack.jsonl'}\n"
            f"               press a button (as Slack would, signed): TOILLESS_SLACK_ACTIONS_URL={url}/toilless/slack/actions "
            f"PYTHONPATH=plugins .venv/bin/python -m toilless.slack_actions.press --sandbox {ctx.home} --button Approve"
        )
