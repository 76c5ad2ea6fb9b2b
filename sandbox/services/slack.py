"""Slack: every configured channel's webhook Connection points at the local sink."""

from __future__ import annotations

from typing import Any

from sandbox.service import SandboxContext, Service
from sandbox.slack_sink import SlackSink


class SlackService(Service):
    name = "slack"
    order = 10
    description = "Slack webhook sink"

    def __init__(self) -> None:
        self.sink: SlackSink | None = None

    def start(self, ctx: SandboxContext) -> None:
        self.sink = SlackSink(
            port=ctx.port(5056),
            jsonl_path=ctx.home / "slack.jsonl",
            files_dir=ctx.home / "slack_files",
            echo=False,  # the console shows one line per run; the messages themselves are in slack.jsonl
        ).start()
        ctx.published["slack_sink"] = self.sink

    def stop(self) -> None:
        if self.sink:
            self.sink.stop()

    def connections(self, ctx: SandboxContext) -> dict[str, dict[str, Any]]:
        from toilless.common.config import read_defaults

        assert self.sink is not None
        slack = read_defaults("toilless")["slack"]
        conns = {conn_id: self.sink.webhook_connection(name) for name, conn_id in slack["channels"].items()}
        conns[slack["api_conn_id"]] = self.sink.api_connection()
        return conns

    def summary(self, ctx: SandboxContext) -> str:
        assert self.sink is not None
        return f"Slack sink on {self.sink.url}: every message is appended to {ctx.home / 'slack.jsonl'}"
