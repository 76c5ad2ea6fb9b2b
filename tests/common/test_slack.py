"""toilless.common.slack: outside text cannot inject mrkdwn, links go only to configured hosts, messages fit Slack."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from toilless.common import slack
from toilless.common.slack import (
    MAX_BLOCKS,
    MAX_MESSAGE_CHARS,
    Mrkdwn,
    allowed_link_hosts,
    as_mrkdwn,
    code,
    code_block,
    context,
    escape,
    fit_message,
    header,
    join,
    limit_problems,
    link,
    mrkdwn,
    plain,
    safe_url,
    section,
    truncate,
)

HOSTS = frozenset({"grafana.example.com", "airflow.example.com"})


@pytest.mark.parametrize(
    ("value", "forbidden", "expected_part"),
    [
        pytest.param("<!channel> look", "<!", "&lt;!channel&gt;", id="<!channel>"),
        pytest.param("<!here|here>", "<!", "&lt;!here|here&gt;", id="<!here>"),
        pytest.param("<@U123ABC>", "<@", "&lt;@U123ABC&gt;", id="user-mention"),
        pytest.param(
            "<https://evil.example|click>", "<http", "&lt;https:\u200b//evil.example|click&gt;", id="disguised-link"
        ),
        pytest.param("a & b", " & ", "a &amp; b", id="&"),
        pytest.param("&lt;!channel&gt;", "&lt;!", "&amp;lt;!channel&amp;gt;", id="pre-escaped-entities"),
        pytest.param("see https://evil.example/x", "https://", "https:\u200b//evil.example/x", id="bare-url"),
        pytest.param("ping @channel now", "@channel", "@\u200bchannel", id="@channel"),
        pytest.param("@Everyone", "@Everyone", "@\u200bEveryone", id="@everyone"),
        pytest.param(
            "x ```<!channel>``` y", "```", "\u02cb\u02cb\u02cb&lt;!channel&gt;\u02cb\u02cb\u02cb", id="fence-in-prose"
        ),
    ],
)
def test_escape_defuses_mrkdwn_control_sequences(value: str, forbidden: str, expected_part: str) -> None:
    escaped = escape(value)

    assert forbidden not in escaped
    assert expected_part in escaped
    assert isinstance(escaped, Mrkdwn)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("lone \ud800 surrogate", "lone ? surrogate", id="lone-surrogate"),
        pytest.param("bell\x07 null\x00 esc\x1b", "bell? null? esc?", id="control-characters"),
        pytest.param("evil\u202egnp.exe", "evil?gnp.exe", id="bidi-override"),
        pytest.param("tab\tnew\nline", "tab\tnew\nline", id="tab-and-newline-kept"),
        pytest.param(12345, "12345", id="not-a-string"),
    ],
)
def test_escape_sanitises_unencodable_and_invisible_characters(value: Any, expected: str) -> None:
    escaped = escape(value)

    assert escaped == expected
    escaped.encode("utf-8")  # would raise on a lone surrogate


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("x`y", "`x\u02cby`", id="backtick-breaks-out"),
        pytest.param("` <!channel> `", "`\u02cb &lt;!channel&gt; \u02cb`", id="backtick-and-mention"),
        pytest.param("a\nb\rc", "`a b c`", id="one-line"),
        pytest.param("", "` `", id="empty"),
        pytest.param("<https://evil.example|x>", "`&lt;https://evil.example|x&gt;`", id="link-inside-code"),
    ],
)
def test_code_keeps_outside_text_inside_the_span(value: str, expected: str) -> None:
    assert code(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("``` <!channel> ```", id="triple-backticks"),
        pytest.param("ends with two``", id="backticks-next-to-the-fence"),
        pytest.param("````````", id="only-backticks"),
        pytest.param("`x` and ``y``", id="mixed-backticks"),
    ],
)
def test_code_block_cannot_be_closed_early(value: str) -> None:
    block = code_block(value)

    assert block.startswith("```")
    assert block.endswith("```")
    assert "`" not in block[3:-3]
    assert "<" not in block


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            "https://grafana.example.com/d/abc?x=1&y=2", "https://grafana.example.com/d/abc?x=1&y=2", id="configured"
        ),
        pytest.param("http://eu.grafana.example.com/x", "http://eu.grafana.example.com/x", id="subdomain"),
        pytest.param(
            "https://grafana.example.com/a|b>c d", "https://grafana.example.com/a%7Cb%3Ec%20d", id="pipe-encoded"
        ),
        pytest.param("javascript:alert(1)", None, id="javascript:"),
        pytest.param("JaVaScRiPt://grafana.example.com/%0aalert(1)", None, id="javascript-with-host"),
        pytest.param("data:text/html;base64,PHNjcmlwdD4=", None, id="data:"),
        pytest.param("https://grafana.example.com@evil.example/", None, id="userinfo"),
        pytest.param("https://user:pw@grafana.example.com/", None, id="userinfo-on-good-host"),
        pytest.param("https://evil.example/", None, id="host-not-configured"),
        pytest.param("https://grafana.example.com.evil.example/", None, id="suffix-trick"),
        pytest.param("https://evilgrafana.example.com/", None, id="no-dot-before-allowed"),
        pytest.param("https://evil.example\\.grafana.example.com/", None, id="backslash-host"),
        pytest.param("https://grafana.example.com:99999/", None, id="bad-port"),
        pytest.param("ftp://grafana.example.com/file", None, id="ftp"),
        pytest.param("https://grafana.example.com/" + "a" * 3000, None, id="too-long"),
        pytest.param("https://grafana.example.com/\x07", None, id="control-character"),
        pytest.param(None, None, id="none"),
        pytest.param("//grafana.example.com/x", None, id="scheme-relative"),
    ],
)
def test_safe_url_allows_only_http_to_configured_hosts(url: Any, expected: str | None) -> None:
    assert safe_url(url, HOSTS) == expected


def test_link_to_a_configured_host_is_a_link_with_an_escaped_label() -> None:
    made = link("https://grafana.example.com/d?a=1&b=2", "<!channel> dash|board", HOSTS)

    assert made == "<https://grafana.example.com/d?a=1&amp;b=2|&lt;!channel&gt; dash¦board>"


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://evil.example/login", id="host-not-configured"),
        pytest.param("javascript:alert(1)", id="javascript:"),
        pytest.param("data:text/html,<script>", id="data:"),
        pytest.param("https://grafana.example.com@evil.example/", id="userinfo"),
    ],
)
def test_link_to_anything_else_is_inert_text(url: str) -> None:
    made = link(url, "Open", HOSTS)

    assert "<" not in made
    assert made.startswith("Open (")
    assert "not linked" in made


@pytest.mark.parametrize(
    ("settings", "base_url", "expected"),
    [
        pytest.param({}, None, frozenset(), id="nothing-configured"),
        pytest.param(
            {
                "slack": {
                    "link_hosts": ["Grafana.Example.com", "https://logs.example.com/app", "kibana.example.com:5601"]
                }
            },
            None,
            frozenset({"grafana.example.com", "logs.example.com", "kibana.example.com"}),
            id="names-and-urls",
        ),
        pytest.param(
            {"airflow_base_url": "https://airflow.example.com/"},
            None,
            frozenset({"airflow.example.com"}),
            id="ui-setting",
        ),
        pytest.param({"airflow_base_url": ""}, "http://127.0.0.1:8080", frozenset({"127.0.0.1"}), id="ui-fallback"),
        pytest.param({"slack": None}, None, frozenset(), id="slack-section-empty"),
    ],
)
def test_allowed_link_hosts(settings: dict[str, Any], base_url: str | None, expected: frozenset[str]) -> None:
    assert allowed_link_hosts(settings, base_url) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(("<!channel>",), "grew &lt;!channel&gt;", id="plain-escaped"),
        pytest.param((Mrkdwn("*bold*"),), "grew *bold*", id="mrkdwn-kept"),
        pytest.param((code("db`1"),), "grew `db\u02cb1`", id="code-kept"),
        pytest.param((42,), "grew 42", id="number"),
    ],
)
def test_mrkdwn_template_escapes_plain_arguments(args: tuple[Any, ...], expected: str) -> None:
    assert mrkdwn("grew {}", *args) == expected


def test_join_and_as_mrkdwn_escape_only_plain_strings() -> None:
    assert join([code("a"), "<b>", Mrkdwn("_c_")]) == "`a`, &lt;b&gt;, _c_"
    assert as_mrkdwn("<x>") == "&lt;x&gt;"
    assert as_mrkdwn(Mrkdwn("<y>")) == "<y>"


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        pytest.param("short", 10, "short", id="fits"),
        pytest.param("x" * 100, 40, "x" * 14 + "… (86 more characters cut)", id="cut-with-note"),
        pytest.param("x" * 10_000, 35, "x" * 6 + "… (9,994 more characters cut)", id="count-with-more-digits"),
        pytest.param("x" * 100, 5, "xxxxx", id="tiny-limit"),
        pytest.param("x", 0, "", id="zero"),
    ],
)
def test_truncate_says_what_was_cut(text: str, limit: int, expected: str) -> None:
    assert truncate(text, limit) == expected


def test_900_kb_value_is_bounded_quickly_and_says_what_was_cut() -> None:
    value = "<!channel> " + "A" * 900_000
    started = time.perf_counter()

    escaped = escape(value, 500)

    assert time.perf_counter() - started < 2
    assert len(escaped) <= 500 + 20  # escaping "<" and ">" adds a few characters
    assert "more characters cut" in escaped
    assert "<!" not in escaped


def test_a_huge_value_is_masked_before_it_is_cut() -> None:
    # A huge value is cut before masking (for speed): a secret in the shown part is still seen whole.
    value = "x" * 300 + " postgresql://orders:" + "S" * 1000 + "@db " + "z" * 900_000

    escaped = escape(value, 600)

    assert "SSSS" not in escaped
    assert "postgresql:\u200b//orders:***@db" in escaped


@pytest.mark.parametrize(
    ("value", "secret"),
    [
        pytest.param("postgresql://orders:S3cr3tPw@db/orders", "S3cr3tPw", id="connection-uri"),
        pytest.param("Authorization: Bearer abc123def456", "abc123def456", id="bearer"),
        pytest.param("xoxb-1234567890-abcdefghij", "xoxb-1234567890", id="xoxb"),
        pytest.param("password=hunter2", "hunter2", id="password="),
        pytest.param("AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", id="aws-key"),
    ],
)
def test_every_builder_masks_secrets(value: str, secret: str) -> None:
    for built in (escape(value), code(value), code_block(value), plain(value), link(value, value, HOSTS)):
        assert secret not in built


def test_every_builder_masks_a_value_registered_with_airflows_secrets_masker() -> None:
    from airflow.sdk._shared.secrets_masker import mask_secret

    registered = "registered-in-masker-4c81e2"
    mask_secret(registered)

    built = [escape(registered), code(registered), code_block(registered), plain(registered), header(registered)]

    assert not any(registered in json.dumps(item) for item in built)


def test_header_and_section_are_bounded() -> None:
    assert len(header("h" * 1000)["text"]["text"]) == 150
    assert len(section(Mrkdwn("s" * 5000))["text"]["text"]) == 3000
    assert len(context(*["c"] * 20)["elements"]) == 10
    assert section("")["text"]["text"] == " "


def test_fit_message_with_20000_items_keeps_50_blocks_and_says_what_was_cut() -> None:
    message = {"text": "t" * 100_000, "blocks": [section(Mrkdwn(f"item {i}")) for i in range(20_000)]}
    assert limit_problems(message)

    fitted = fit_message(message)

    assert limit_problems(fitted) == []
    assert len(fitted["blocks"]) == MAX_BLOCKS
    assert "19,951 more block(s) cut" in fitted["blocks"][-1]["elements"][0]["text"]
    assert fitted["blocks"][48]["text"]["text"] == "item 48"


def test_fit_message_keeps_the_whole_message_under_40000_characters() -> None:
    message = {"text": "summary", "blocks": [section(Mrkdwn("x" * 2999)) for _ in range(40)]}

    fitted = fit_message(message)

    assert limit_problems(fitted) == []
    assert slack._block_chars(fitted) <= MAX_MESSAGE_CHARS
    assert "more block(s) cut" in fitted["blocks"][-1]["elements"][0]["text"]


def test_fit_message_keeps_a_message_that_fits_unchanged() -> None:
    message = {"text": "hello", "blocks": [header("Title"), section(Mrkdwn("*body*")), context("ctx")]}

    assert fit_message(message) == message
    assert limit_problems(message) == []


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        pytest.param({"text": "x" * 40_001}, "text has 40,001 characters", id="long-text"),
        pytest.param({"text": "t", "blocks": [section(Mrkdwn("x"))] * 51}, "51 blocks", id="too-many-blocks"),
        pytest.param(
            {"text": "t", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]},
            "block 0 text has 3,001 characters",
            id="long-section",
        ),
        pytest.param(
            {"text": "t", "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}]},
            "block 0 text has 151 characters",
            id="long-header",
        ),
        pytest.param(
            {"text": "t", "blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}]},
            "11 fields",
            id="too-many-fields",
        ),
        pytest.param({"text": "bad \ud800"}, "lone surrogate", id="lone-surrogate"),
    ],
)
def test_limit_problems_names_each_limit(message: dict[str, Any], problem: str) -> None:
    problems = limit_problems(message)

    assert any(problem in item for item in problems), problems
    assert limit_problems(fit_message(message)) == []


def test_fit_message_masks_secrets_and_removes_lone_surrogates() -> None:
    message = {
        "text": "postgresql://orders:S3cr3tPw@db \ud800",
        "blocks": [section(Mrkdwn("token=abc123 \x07"))],
    }

    fitted = fit_message(message)

    dumped = json.dumps(fitted, ensure_ascii=False)
    assert "S3cr3tPw" not in dumped
    assert "abc123" not in dumped
    dumped.encode("utf-8")
    assert "\x07" not in dumped


@pytest.mark.parametrize(
    ("lines", "max_lines", "expected"),
    [
        pytest.param(["<!channel>", code("x")], 5, ["• &lt;!channel&gt;", "• `x`"], id="escaped-and-kept"),
        pytest.param(
            ["a", "b", "c"], 2, ["• a", "• b", "• … and 1 more line(s), not shown (the run log has all)"], id="cut"
        ),
        pytest.param([], 2, [], id="empty"),
    ],
)
def test_bullets_escape_bound_and_say_what_was_cut(lines: list[Any], max_lines: int, expected: list[str]) -> None:
    assert slack.bullets(lines, max_lines=max_lines) == expected


def test_bullets_of_20000_items_are_bounded() -> None:
    shown = slack.bullets((f"item {i}" for i in range(20_000)), max_lines=50)

    assert len(shown) == 51
    assert "19,950 more" in shown[-1]


def test_fit_message_counts_every_block_it_drops() -> None:
    # 50 good blocks and one that is not a block: the note takes a place, so two are cut in all.
    message = {"text": "t", "blocks": ["not a block", *(section(Mrkdwn(f"b{i}")) for i in range(50))]}

    fitted = fit_message(message)

    assert len(fitted["blocks"]) == MAX_BLOCKS
    assert "_2 more block(s) cut" in fitted["blocks"][-1]["elements"][0]["text"]
