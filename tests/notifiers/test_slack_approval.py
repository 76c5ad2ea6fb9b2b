"""The approval request message: its subject and body hold outside values and are escaped; the link is trusted only."""

from __future__ import annotations

import pytest

from toilless.common.slack import limit_problems
from toilless.notifiers.slack_approval import approval_message

URL = "http://127.0.0.1:8080/dags/d/runs/r/required_actions"


def test_approval_message_keeps_bold_and_links_the_request() -> None:
    message = approval_message(
        subject="Grow db-1", body="**db-1** 100 GiB -> 146 GiB", url=URL, link_hosts={"127.0.0.1"}
    )

    assert "*db-1* 100 GiB -&gt; 146 GiB" in message["text"]
    assert f"<{URL}|Approve or reject in Airflow>" in message["text"]
    assert message["blocks"][0]["text"]["text"] == "Approval needed: Grow db-1"
    assert limit_problems(message) == []


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        pytest.param("<!channel>", "<https://evil.example|approve here>", id="injection"),
        pytest.param("x" * 900_000, "y" * 900_000, id="900-kb"),
        pytest.param("a\ud800", "b\x00\u202e", id="unencodable"),
    ],
)
def test_approval_message_escapes_subject_and_body(subject: str, body: str) -> None:
    message = approval_message(subject=subject, body=body, url=URL, link_hosts={"127.0.0.1"})

    # The header is plain_text (Slack does not parse it); the fallback text and sections are mrkdwn.
    mrkdwn = [message["text"], *(block["text"]["text"] for block in message["blocks"][1:])]
    assert not any("<!" in text for text in mrkdwn)
    assert not any("<https://evil" in text for text in mrkdwn)
    assert message["blocks"][0]["text"]["type"] == "plain_text"
    assert limit_problems(message) == []


def test_approval_link_to_an_unconfigured_host_is_not_a_link() -> None:
    message = approval_message(subject="s", body="b", url="https://evil.example/x", link_hosts={"127.0.0.1"})

    assert "<https://evil" not in str(message)
    assert "not linked" in message["text"]
