"""Slack: every configured channel's webhook Connection points at the local sink."""

from __future__ import annotations

from typing import Any

from sandbox.service import SandboxContext, ServerService
from sandbox.slack_sink import SlackSink


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

    def connections(self, ctx: SandboxContext) -> dict[str, dict[str, Any]]:
        from toilless.common.config import read_defaults

        sink = self.running()
        slack = read_defaults("toilless")["slack"]
        conns = {conn_id: sink.webhook_connection(name) for name, conn_id in slack["channels"].items()}
        conns[slack["api_conn_id"]] = sink.api_connection()
        return conns

    def summary(self, ctx: SandboxContext) -> str:
        return f"Slack sink on {self.running().url}: every message is appended to {ctx.home / 'slack.jsonl'}"
