"""Slack output that is safe to build from outside text: escaping, links, limits. Pure, no Airflow import.

Everything Toilless posts comes from somewhere it does not control (alert labels and annotations, log lines, file names,
error text, Params). Slack's mrkdwn treats ``&``, ``<`` and ``>`` as control characters (``<!channel>`` pings a whole
channel, ``<https://evil|click here>`` disguises a link), a backtick ends a code span, and Slack refuses a message over
its limits (50 blocks, 3,000 characters per section text). So every outside string goes through :func:`escape`,
:func:`code` or :func:`link` where the message is built, and every message goes through :func:`fit_message` on its way
out (``toilless.reporting.post_message`` does it), which also masks secrets as a last line of defence.

Limits are from Slack's Block Kit reference: https://api.slack.com/reference/block-kit/blocks
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from toilless.common.redaction import mask_secrets, mask_structure

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_CONTEXT_ELEMENTS = 10
#: Slack truncates a message's text over 40,000 characters; the same budget bounds all of a message's blocks.
MAX_MESSAGE_CHARS = 40_000
#: Default bound for one outside value inside a message (a label, an annotation, a log line).
DEFAULT_VALUE_LIMIT = 500

_ZERO_WIDTH_SPACE = "\u200b"
_BACKTICK_LOOKALIKE = "\u02cb"  # modifier letter grave accent
_MENTION = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
_SCHEME = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]{1,20}):(//)")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def truncate(text: str, limit: int) -> str:
    """``text`` bounded to ``limit`` characters, saying how much was cut."""
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    note = f"… ({len(text) - limit:,} more characters cut)"
    if limit <= len(note):
        return text[:limit]
    return text[: limit - len(note)] + note


def clean(value: Any, limit: int | None = DEFAULT_VALUE_LIMIT) -> str:
    """Outside value as safe text before escaping: a string, secrets masked, no control characters or lone
    surrogates, bounded."""
    text = value if isinstance(value, str) else str(value)
    # A lone surrogate ("\ud800") cannot be encoded: Slack (and JSON encoders) would fail on it.
    text = text.encode("utf-8", "replace").decode("utf-8")
    text = _CONTROL.sub("?", text)
    text = mask_secrets(text)
    return truncate(text, limit) if limit is not None else text


def escape(value: Any, limit: int | None = DEFAULT_VALUE_LIMIT) -> str:
    """Outside text for mrkdwn prose: masked, bounded, ``& < >`` escaped, mentions and bare URLs defused.

    Slack turns a bare ``https://...`` into a link and ``@channel`` (with link_names) into a ping; a zero-width space
    keeps the text readable and inert.
    """
    text = clean(value, limit)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MENTION.sub(lambda match: "@" + _ZERO_WIDTH_SPACE + match.group(1), text)
    return _SCHEME.sub(lambda match: match.group(1) + ":" + _ZERO_WIDTH_SPACE + match.group(2), text)


def code(value: Any, limit: int | None = 200) -> str:
    """Outside text as an inline code span: one line, no backtick that could end the span, escaped."""
    text = clean(value, limit).replace("\r", " ").replace("\n", " ")
    # Slack has no escape for a backtick inside a code span; a look-alike keeps the value readable.
    text = text.replace("`", _BACKTICK_LOOKALIKE)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f"`{text}`" if text else "` `"


def code_block(value: Any, limit: int = 2000) -> str:
    """Outside text (log lines, error text) as a preformatted block that cannot be closed early."""
    text = clean(value, limit).replace("```", _BACKTICK_LOOKALIKE * 3)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f"```{text}```" if text.strip() else "``` ```"


def plain(value: Any, limit: int = MAX_HEADER_TEXT) -> str:
    """Outside text for a ``plain_text`` object (headers, button labels): masked and bounded."""
    return clean(value, limit) or " "


def allowed_link_hosts(settings: Mapping[str, Any]) -> frozenset[str]:
    """Hosts Toilless may link to: ``slack.link_hosts`` from toilless.yaml plus the Airflow UI's own host."""
    hosts = {str(host).lower() for host in (settings.get("slack", {}) or {}).get("link_hosts", []) or []}
    base = str(settings.get("airflow_base_url") or "")
    if base:
        host = urlsplit(base).hostname
        if host:
            hosts.add(host.lower())
    return frozenset(hosts)


def safe_url(url: Any, allowed_hosts: Iterable[str]) -> str | None:
    """``url`` if it is http(s) to an allowed host (exact host or a subdomain of one), else None."""
    if not isinstance(url, str) or len(url) > 2000:
        return None
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"} or not host or parts.username or parts.password:
        return None
    allowed = {item.lower() for item in allowed_hosts}
    if not any(host == item or host.endswith("." + item) for item in allowed):
        return None
    # Slack's link syntax ends at "|" or ">": percent-encode them (and anything else unsafe) in the address. "&"
    # separates query parameters, so it stays one, written as Slack's "&amp;" (percent-encoding it would change the
    # query: a=1%26b=2 is one parameter).
    return quote(url.strip(), safe=":/?#[]@!$&'()*+,;=%-._~").replace("&", "&amp;")


def link(url: Any, label: Any, allowed_hosts: Iterable[str]) -> str:
    """A mrkdwn link when ``url`` is trusted; otherwise the label and the address as inert text."""
    target = safe_url(url, allowed_hosts)
    text = escape(label, 150).replace("|", "¦")
    if target is None:
        shown = escape(url, 200) if url else ""
        return f"{text} ({shown}, not linked: not a configured host)" if shown else text
    return f"<{target}|{text}>"


def section(text: str) -> dict[str, Any]:
    """A mrkdwn section block; ``text`` must already be built from escaped parts. Bounded to Slack's limit."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, MAX_SECTION_TEXT) or " "}}


def header(text: Any) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": plain(text, MAX_HEADER_TEXT)}}


def context(*texts: str) -> dict[str, Any]:
    elements = [{"type": "mrkdwn", "text": truncate(text, MAX_SECTION_TEXT) or " "} for text in texts]
    return {"type": "context", "elements": elements[:MAX_CONTEXT_ELEMENTS]}


def fit_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``message`` (``text`` + ``blocks``) within Slack's limits, secrets masked, saying what was cut.

    This is the last step before any message leaves Toilless. Builders should already have escaped outside text;
    this does not escape (it cannot tell markup from data) but guarantees the limits and the masking.
    """
    fitted: dict[str, Any] = mask_structure(dict(message))
    text = fitted.get("text")
    if isinstance(text, str):
        fitted["text"] = truncate(text, MAX_MESSAGE_CHARS)
    blocks = fitted.get("blocks")
    if not blocks:
        return fitted
    budget = MAX_MESSAGE_CHARS
    kept: list[dict[str, Any]] = []
    cut_blocks = 0
    for index, block in enumerate(blocks):
        if not isinstance(block, dict):
            cut_blocks += 1
            continue
        block = _fit_block(block)
        size = _block_chars(block)
        # Keep room for the closing note whenever something may still be cut.
        if (len(kept) >= MAX_BLOCKS - 1 and index < len(blocks) - 1) or size > budget:
            cut_blocks += len(blocks) - index
            break
        kept.append(block)
        budget -= size
    if cut_blocks:
        kept = kept[: MAX_BLOCKS - 1]
        kept.append(context(f"_{cut_blocks} more block(s) cut to stay within Slack's limits; the run log has all._"))
    fitted["blocks"] = kept
    return fitted


def _fit_block(block: dict[str, Any]) -> dict[str, Any]:
    block = dict(block)
    kind = block.get("type")
    text = block.get("text")
    if isinstance(text, dict) and isinstance(text.get("text"), str):
        limit = MAX_HEADER_TEXT if kind == "header" else MAX_SECTION_TEXT
        block["text"] = {**text, "text": truncate(text["text"], limit) or " "}
    if isinstance(block.get("fields"), list):
        fields = block["fields"][:MAX_FIELDS]
        block["fields"] = [
            {**field, "text": truncate(str(field.get("text", "")), MAX_FIELD_TEXT) or " "}
            if isinstance(field, dict)
            else field
            for field in fields
        ]
    if kind == "context" and isinstance(block.get("elements"), list):
        block["elements"] = [
            {**element, "text": truncate(element["text"], MAX_SECTION_TEXT) or " "}
            if isinstance(element, dict) and isinstance(element.get("text"), str)
            else element
            for element in block["elements"][:MAX_CONTEXT_ELEMENTS]
        ]
    return block


def _block_chars(block: Mapping[str, Any]) -> int:
    total = 0
    stack: list[Any] = [block]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return total
