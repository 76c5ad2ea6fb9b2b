from __future__ import annotations

import pytest

from toilless.common.config import ConfigError, read_defaults
from toilless.common.reporting import channel_conn_id, post_message, render_report, upload_file
from toilless.common.slack import Mrkdwn, code, fit_message, limit_problems


def test_render_report_lists_lines_and_links_the_run() -> None:
    message = render_report(
        title="Log rotation done",
        lines=["app: 3 files, 120 MB freed"],
        status="warning",
        dag_id="log_rotation",
        run_id="scheduled__1",
        link="http://ui/dags/log_rotation/runs/scheduled__1",
        link_hosts={"ui"},
    )
    assert "app: 3 files, 120 MB freed" in message["text"]
    assert ":warning:" in message["text"]
    assert "http://ui/dags/log_rotation/runs/scheduled__1" in message["text"]
    assert message["blocks"][0]["text"]["text"] == "Log rotation done"


def test_render_report_without_lines_says_so() -> None:
    assert "nothing to do" in render_report(title="t", lines=[])["text"]


def test_long_reports_are_split_into_slack_sized_sections() -> None:
    message = render_report(title="t", lines=[f"line {i} " + "x" * 100 for i in range(100)])
    sections = [b for b in message["blocks"] if b["type"] == "section"]
    assert len(sections) > 1
    assert all(len(section["text"]["text"]) <= 3000 for section in sections)


def test_unknown_channel_is_an_error_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown Slack channel 'nowhere'.*compliance"):
        channel_conn_id("nowhere", read_defaults("toilless"))


def test_post_message_goes_through_the_slack_provider_to_the_channel(slack_sink) -> None:
    result = post_message("compliance", "hello compliance", blocks=[{"type": "divider"}])
    assert result["conn_id"] == "slack_compliance"
    [message] = slack_sink.messages()
    assert message["channel"] == "compliance"
    assert message["text"] == "hello compliance"
    assert message["blocks"] == [{"type": "divider"}]


def test_post_message_raises_when_slack_refuses(slack_sink) -> None:
    slack_sink.fail_with_status = 500
    with pytest.raises(Exception, match="500"):
        post_message("urgent", "will not arrive")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("<!channel> freed 3 GB", "• &lt;!channel&gt; freed 3 GB", id="plain-line-escaped"),
        pytest.param("a & b <https://evil.example|x>", "• a &amp; b &lt;https:\u200b//evil.example|x&gt;", id="link"),
        pytest.param(Mrkdwn("*bold* <!here>"), "• *bold* <!here>", id="mrkdwn-line-kept"),
        pytest.param(code("app`.log"), "• `app\u02cb.log`", id="code-line-kept"),
    ],
)
def test_render_report_escapes_plain_lines_and_keeps_mrkdwn_lines(line: str, expected: str) -> None:
    message = render_report(title="t", lines=[line])

    assert expected in message["blocks"][1]["text"]["text"]
    assert expected in message["text"]


def test_render_report_links_the_run_only_on_a_configured_host() -> None:
    message = render_report(
        title="t", lines=["x"], dag_id="d", run_id="r", link="https://evil.example/dags/d/runs/r", link_hosts={"ui"}
    )

    assert "<https://evil.example" not in str(message)
    assert "not linked" in message["text"]


def test_render_report_title_is_plain_text() -> None:
    message = render_report(title="<!channel> " + "t" * 500, lines=[])

    assert message["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": message["blocks"][0]["text"]["text"]},
    }
    assert len(message["blocks"][0]["text"]["text"]) == 150
    assert "<!channel>" not in message["text"]


@pytest.mark.parametrize(
    "lines",
    [
        pytest.param(["x" * 900_000], id="one-900-kb-line"),
        pytest.param([f"line {i}" for i in range(20_000)], id="20000-lines"),
        pytest.param(["<" * 1000] * 150, id="lines-that-grow-when-escaped"),
        pytest.param([Mrkdwn("m" * 5000)] * 150, id="long-mrkdwn-lines"),
    ],
)
def test_render_report_is_within_slacks_limits_before_fit_message(lines: list[str]) -> None:
    message = render_report(title="t", lines=lines, dag_id="d", run_id="r", link="http://ui/x", link_hosts={"ui"})

    assert limit_problems(message) == []
    assert fit_message(message)["blocks"] == message["blocks"]
    assert "more line(s)" in message["blocks"][-2]["text"]["text"] or "characters cut" in str(message)


def test_upload_file_title_and_comment_are_masked_and_escaped(monkeypatch, tmp_path, set_connection) -> None:
    from airflow.providers.slack.hooks import slack as slack_hooks

    sent: dict = {}
    monkeypatch.setattr(slack_hooks.SlackHook, "send_file_v1_to_v2", lambda self, **kwargs: sent.update(kwargs))
    set_connection("slack_api", {"conn_type": "slack", "password": "xoxb-test"})
    chart = tmp_path / "chart.png"
    chart.write_bytes(b"png")

    uploaded = upload_file(
        "finops", chart, title="db postgresql://u:S3cr3tPw@h " + "t" * 500, comment="<!channel> password=hunter2",
        settings=read_defaults("toilless"),
    )  # fmt: skip

    assert uploaded
    assert "S3cr3tPw" not in sent["title"]
    assert len(sent["title"]) <= 250
    assert sent["initial_comment"] == "&lt;!channel&gt; password=***"
