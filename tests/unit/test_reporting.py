from __future__ import annotations

import pytest

from toilless.config import ConfigError, read_defaults
from toilless.reporting import channel_conn_id, post_message, render_report


def test_render_report_lists_lines_and_links_the_run() -> None:
    message = render_report(
        title="Log rotation done",
        lines=["app: 3 files, 120 MB freed"],
        status="warning",
        dag_id="log_rotation",
        run_id="scheduled__1",
        link="http://ui/dags/log_rotation/runs/scheduled__1",
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
