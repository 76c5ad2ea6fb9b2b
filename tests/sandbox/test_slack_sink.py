from __future__ import annotations

import json
import threading
import urllib.request

from sandbox.slack_sink import SlackSink


def _post(url: str, body: dict) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status


def test_webhook_messages_are_recorded_per_channel_and_appended_to_jsonl(tmp_path) -> None:
    jsonl = tmp_path / "slack.jsonl"
    with SlackSink(jsonl_path=jsonl) as sink:
        assert _post(sink.webhook_url("urgent"), {"text": "one", "blocks": [{"type": "divider"}]}) == 200
        assert _post(sink.webhook_url("non_urgent"), {"text": "two"}) == 200
        assert [m["text"] for m in sink.messages("urgent")] == ["one"]
        assert len(sink.messages()) == 2
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [(line["channel"], line["text"]) for line in lines] == [("urgent", "one"), ("non_urgent", "two")]


def test_wait_for_returns_when_the_message_arrives() -> None:
    with SlackSink() as sink:
        timer = threading.Timer(0.2, _post, args=(sink.webhook_url("ops"), {"text": "late"}))
        timer.start()
        found = sink.wait_for(lambda m: m["text"] == "late", timeout=5)
        assert found[0]["channel"] == "ops"


def test_file_upload_through_the_slack_provider(tmp_path, set_connection) -> None:
    from airflow.providers.slack.hooks.slack import SlackHook

    png = tmp_path / "chart.png"
    png.write_bytes(b"\x89PNG fake but bytes")
    with SlackSink(files_dir=tmp_path / "files") as sink:
        set_connection("slack_api", sink.api_connection())
        SlackHook(slack_conn_id="slack_api").send_file_v1_to_v2(
            channels="C0123", file=str(png), title="Chart", initial_comment="see chart"
        )
        [message] = sink.messages()
        assert message["kind"] == "file"
        assert message["files"][0]["bytes"] == png.stat().st_size
