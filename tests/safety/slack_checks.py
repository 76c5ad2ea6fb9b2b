"""What every Slack message Toilless builds must satisfy, checked the same way for every builder.

Shared by the safety tests: outside text never becomes mrkdwn control sequences, links go only to configured hosts,
code spans cannot be closed by outside backticks, secrets never appear, and the message is within Slack's limits
both as built and after ``fit_message``. The limit and mrkdwn readers are the intake tests' (tests/fixtures/slack_checks.py):
an oracle written apart from the product's own ``limit_problems``.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Mapping
from typing import Any

from tests.fixtures.slack_checks import limit_problems, mrkdwn_texts
from toilless.common.slack import fit_message, safe_url

#: Hosts the tests configure as trusted.
HOSTS = frozenset({"airflow.example.com", "grafana.example.com", "github.com"})

#: Secrets planted in hostile input; none may appear anywhere in a message.
SECRETS = ("S3cr3tPw", "hunter2", "abc123def456", "AKIAIOSFODNN7EXAMPLE", "xoxb-1234567890", "ghp_abcdefghij")

HOSTILE_PIECES = (
    "<!channel>",
    "<!here>",
    "<!subteam^S123|@oncall>",
    "<@U123ABC>",
    "<https://evil.example|click here>",
    "<http://grafana.example.com|fine but hand-made>",
    "&",
    "&lt;!channel&gt;",
    "`",
    "```",
    "``",
    "javascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD4=",
    "https://user:pw@grafana.example.com/",
    "https://evil.example/login",
    "\ud800",
    "\udfff",
    "\x00",
    "\x1b[31m",
    "\u202e",
    "\u200b",
    "@channel",
    "@here",
    "*",
    "_",
    "~",
    ">",
    "\n",
    "\r\n",
    "|",
    " postgresql://orders:S3cr3tPw@db.internal/orders ",
    " xoxb-1234567890-abcdefghij ",
    " password=hunter2 ",
    " Authorization: Bearer abc123def456 ",
    " AKIAIOSFODNN7EXAMPLE ",
    " ghp_abcdefghijklmnopqrstuvwxyz0123 ",
    "é",
    "🔥",
    "{}",
    "{0}",
    "%s",
)


def hostile_text(rng: random.Random) -> str:
    """A string of hostile pieces and noise; now and then a huge one (900 KB)."""
    pieces = [rng.choice(HOSTILE_PIECES) for _ in range(rng.randint(1, 12))]
    if rng.random() < 0.3:
        pieces.append("".join(chr(rng.randint(32, 0x2FFF)) for _ in range(rng.randint(1, 40))))
    text = "".join(pieces)
    if rng.random() < 0.03:
        text = (text or "x") * (900_000 // max(1, len(text)) + 1)
    return text


_ANGLE = re.compile(r"<([^>]*)>?")
_CODE_BLOCK = re.compile(r"```(.*?)```", re.DOTALL)


def unsafe_parts(message: Mapping[str, Any], hosts: Iterable[str] = HOSTS) -> list[str]:
    """Everything in ``message`` that breaks a promise (empty: safe)."""
    found = [f"limits as built: {problem}" for problem in limit_problems(message)]
    fitted = fit_message(message)
    found += [f"limits after fit_message: {problem}" for problem in limit_problems(fitted)]
    dumped = json.dumps(message, ensure_ascii=False, default=str)
    found += [f"secret {secret!r} in message" for secret in SECRETS if secret in dumped]
    for text in mrkdwn_texts(message):
        if "<!" in text:
            found.append(f"raw <! in {text[:200]!r}")
        for match in _ANGLE.finditer(text):
            target = match.group(1).split("|", 1)[0].replace("&amp;", "&")
            if safe_url(target, hosts) is None:
                found.append(f"<...> that is not a link to a configured host: {match.group(0)[:200]!r}")
        for block in _CODE_BLOCK.findall(text):
            if "`" in block:
                found.append(f"backtick inside a code block: {block[:200]!r}")
    return found
