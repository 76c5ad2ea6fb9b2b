"""Slack output that is safe to build from outside text: escaping, links, limits. Pure, no Airflow import.

Over 400 lines because escaping, links and Slack's limits are one contract: split, a caller could build with one half.

Everything Toilless posts comes from somewhere it does not control (alert labels and annotations, log lines, file names,
error text, Params). Slack's mrkdwn treats ``&``, ``<`` and ``>`` as control characters (``<!channel>`` pings a whole
channel, ``<https://evil|click here>`` disguises a link), a backtick ends a code span, and Slack refuses a message over
its limits (50 blocks, 3,000 characters per section text). So every outside string goes through :func:`escape`,
:func:`code` or :func:`link` where the message is built, and every message goes through :func:`fit_message` on its way
out (``toilless.common.reporting.post_message`` does it), which also masks secrets as a last line of defence.

The builders return :class:`Mrkdwn`, a ``str`` that says "already safe mrkdwn". Functions that take lines of outside
text (``toilless.common.reporting.render_report``, :func:`as_mrkdwn`, :func:`mrkdwn`, :func:`join`) escape a plain ``str`` and
keep a ``Mrkdwn`` as it is. An f-string of ``Mrkdwn`` parts is a plain ``str`` again (Python cannot know it is safe):
compose with :func:`mrkdwn` (``mrkdwn("grew {} to {} GiB", code(instance_id), size)``) instead.

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
#: Slack truncates a message's text over 40,000 characters; the same budget bounds all of a message's text and blocks.
MAX_MESSAGE_CHARS = 40_000
#: With blocks, ``text`` is only the notification fallback: bounded so the blocks keep most of the budget.
MAX_FALLBACK_TEXT = 12_000
#: Default bound for one outside value inside a message (a label, an annotation, a log line).
DEFAULT_VALUE_LIMIT = 500
#: Longest URL :func:`safe_url` accepts.
MAX_URL_LENGTH = 2000

_ZERO_WIDTH_SPACE = "\u200b"
_BACKTICK_LOOKALIKE = "\u02cb"  # modifier letter grave accent
_FENCE = re.compile(r"`{3,}")
_MENTION = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
_SCHEME = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]{1,20}):(//)")
# C0 controls but tab/newline/carriage return, DEL, C1 controls, and the bidirectional overrides/isolates that make a
# string display as something else ("Trojan Source").
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_HOSTNAME = re.compile(r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?)*")
# Outside text is masked before it is cut; above this it is cut first (with a margin the shown part never reaches),
# so a 900 KB label costs the same as a 20 KB one.
_PRE_CUT_MARGIN = 4096


class Mrkdwn(str):
    """Text that is already safe mrkdwn: built by this module from escaped parts, or Toilless's own literal markup.

    A plain ``str`` given where outside text may appear is escaped; a ``Mrkdwn`` is kept as it is.
    """

    __slots__ = ()


def truncate(text: str, limit: int) -> str:
    """``text`` bounded to ``limit`` characters, saying how much was cut. Keeps :class:`Mrkdwn` (cutting adds no markup)."""
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    note = f"… ({len(text) - limit:,} more characters cut)"
    # The note takes room too: count what is really cut (the count may grow by a digit, hence twice).
    for _ in range(2):
        note = f"… ({len(text) - max(0, limit - len(note)):,} more characters cut)"
    cut = text[:limit] if limit <= len(note) else text[: limit - len(note)] + note
    return Mrkdwn(cut) if isinstance(text, Mrkdwn) else cut


def clean(value: Any, limit: int | None = DEFAULT_VALUE_LIMIT) -> str:
    """Outside value as safe text before escaping: a string, secrets masked, no control characters or lone
    surrogates, bounded (saying how much was cut)."""
    text = value if isinstance(value, str) else str(value)
    original_length = len(text)
    pre_cut = limit is not None and original_length > limit + _PRE_CUT_MARGIN
    if pre_cut:
        text = text[: limit + _PRE_CUT_MARGIN]
    text = _sanitize(text)
    text = mask_secrets(text)
    if limit is None:
        return text
    if pre_cut:
        # The pre-cut end may hold half a secret no pattern recognises: never show the last part of what was masked
        # (masking keeps order, so that part comes from the cut end).
        kept = max(0, min(limit - 48, len(text) - _PRE_CUT_MARGIN // 2))
        return (text[:kept] + f"… ({original_length - kept:,} more characters cut)")[:limit]
    return truncate(text, limit)


def escape(value: Any, limit: int | None = DEFAULT_VALUE_LIMIT) -> Mrkdwn:
    """Outside text for mrkdwn prose: masked, bounded, ``& < >`` escaped, mentions and bare URLs defused.

    Slack turns a bare ``https://...`` into a link and ``@channel`` (with link_names) into a ping; a zero-width space
    keeps the text readable and inert. Runs of three or more backticks become look-alikes.
    """
    text = _escape_controls(clean(value, limit))
    # A fence of three backticks in prose would open a code block that swallows the rest of the message; single
    # backticks stay (hand-written `code` in report lines keeps working), they cannot form control sequences.
    text = _FENCE.sub(lambda match: _BACKTICK_LOOKALIKE * len(match.group(0)), text)
    text = _MENTION.sub(lambda match: "@" + _ZERO_WIDTH_SPACE + match.group(1), text)
    return Mrkdwn(_SCHEME.sub(lambda match: match.group(1) + ":" + _ZERO_WIDTH_SPACE + match.group(2), text))


def code(value: Any, limit: int | None = 200) -> Mrkdwn:
    """Outside text as an inline code span: one line, no backtick that could end the span, escaped."""
    text = clean(value, limit).replace("\r", " ").replace("\n", " ")
    # Slack has no escape for a backtick inside a code span; a look-alike keeps the value readable.
    text = _escape_controls(text.replace("`", _BACKTICK_LOOKALIKE))
    return Mrkdwn(f"`{text}`" if text.strip() else "` `")


def code_block(value: Any, limit: int = 2000) -> Mrkdwn:
    """Outside text (log lines, error text) as a preformatted block that cannot be closed early.

    Every backtick becomes a look-alike, not only triples: ``x``` `` next to the closing fence would otherwise make
    five backticks and end the block somewhere else.
    """
    text = _escape_controls(clean(value, limit).replace("`", _BACKTICK_LOOKALIKE))
    return Mrkdwn(f"```{text}```" if text.strip() else "``` ```")


def plain(value: Any, limit: int = MAX_HEADER_TEXT) -> str:
    """Outside text for a ``plain_text`` object (headers, button labels): masked and bounded."""
    return clean(value, limit) or " "


def as_mrkdwn(value: Any, limit: int | None = DEFAULT_VALUE_LIMIT) -> Mrkdwn:
    """``value`` if it is already :class:`Mrkdwn` (bounded to ``limit``), else escaped outside text."""
    if isinstance(value, Mrkdwn):
        return value if limit is None else Mrkdwn(truncate(value, limit))
    return escape(value, limit)


def mrkdwn(template: str, *args: Any, limit: int | None = DEFAULT_VALUE_LIMIT) -> Mrkdwn:
    """Toilless's own markup ``template`` (a literal, never outside text) with each ``{}`` filled by an argument:
    plain values escaped (each bounded to ``limit``), :class:`Mrkdwn` kept."""
    return Mrkdwn(template.format(*(as_mrkdwn(arg, limit) for arg in args)))


def join(parts: Iterable[Any], separator: str = ", ", *, limit: int | None = DEFAULT_VALUE_LIMIT) -> Mrkdwn:
    """Parts joined by Toilless's own ``separator``: plain values escaped, :class:`Mrkdwn` kept."""
    return Mrkdwn(separator.join(as_mrkdwn(part, limit) for part in parts))


def bullets(
    lines: Iterable[Any], *, max_lines: int = 50, line_limit: int | None = DEFAULT_VALUE_LIMIT, what: str = "line"
) -> list[Mrkdwn]:
    """Bullet lines (plain values escaped, :class:`Mrkdwn` kept), at most ``max_lines``, saying how many were cut."""
    shown: list[Mrkdwn] = []
    cut = 0
    for line in lines:
        if len(shown) >= max_lines:
            cut += 1
            continue
        shown.append(Mrkdwn("• " + as_mrkdwn(line, line_limit)))
    if cut:
        shown.append(Mrkdwn(f"• … and {cut:,} more {what}(s), not shown (the run log has all)"))
    return shown


def allowed_link_hosts(settings: Mapping[str, Any], base_url: str | None = None) -> frozenset[str]:
    """Hosts Toilless may link to: ``slack.link_hosts`` from toilless.yaml plus the Airflow UI's own host.

    ``base_url`` is the UI base URL actually used (``toilless.common.reporting.airflow_base_url``, which falls back to
    Airflow's ``[api] base_url``); without it the ``airflow_base_url`` setting is used. Entries may be written as
    host names or as URLs.
    """
    hosts: set[str] = set()
    for entry in (settings.get("slack", {}) or {}).get("link_hosts", []) or []:
        host = _host_of(str(entry))
        if host:
            hosts.add(host)
    for base in (base_url, settings.get("airflow_base_url")):
        host = _host_of(str(base or ""))
        if host:
            hosts.add(host)
    return frozenset(hosts)


def safe_url(url: Any, allowed_hosts: Iterable[str]) -> str | None:
    """``url`` if it is http(s) to an allowed host (exact host or a subdomain of one), else None.

    Refused: other schemes (``javascript:``, ``data:``), user info (``https://good@evil``), host names that are not
    plain DNS names or IP addresses (``evil.example\\.good.example``: browsers read the backslash as a slash).
    The result is percent-encoded where Slack's link syntax would end (``|``, ``<``, ``>``, spaces); ``&`` stays.
    """
    if not isinstance(url, str) or len(url) > MAX_URL_LENGTH or _CONTROL.search(url) or "\\" in url:
        return None
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"} or not host or parts.username or parts.password:
        return None
    if "@" in parts.netloc or not (_HOSTNAME.fullmatch(host) or _is_ip_address(host)):
        return None
    allowed = {item.lower() for item in allowed_hosts if item}
    if not any(host == item or host.endswith("." + item) for item in allowed):
        return None
    return quote(url.strip(), safe=":/?#[]@!$&'()*+,;=%-._~")


def link(url: Any, label: Any, allowed_hosts: Iterable[str]) -> Mrkdwn:
    """A mrkdwn link when ``url`` is trusted; otherwise the label and the address as inert text."""
    target = safe_url(url, allowed_hosts)
    text = escape(label, 150).replace("|", "¦")
    if target is None:
        shown = escape(url, 200) if url else ""
        return Mrkdwn(f"{text} ({shown}, not linked: not a configured host)" if shown else text)
    # In mrkdwn "&" is a control character, inside a link's address too.
    return Mrkdwn(f"<{target.replace('&', '&amp;')}|{text}>")


def section(text: str) -> dict[str, Any]:
    """A mrkdwn section block; ``text`` must already be built from escaped parts. Bounded to Slack's limit."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, MAX_SECTION_TEXT) or " "}}


def fields_section(*texts: str) -> dict[str, Any]:
    """A section of mrkdwn fields (already built from escaped parts): at most 10, each bounded to 2,000 characters."""
    fields = [{"type": "mrkdwn", "text": truncate(text, MAX_FIELD_TEXT) or " "} for text in texts[:MAX_FIELDS]]
    return {"type": "section", "fields": fields}


def header(text: Any) -> dict[str, Any]:
    """A header block: ``text`` is plain text (never mrkdwn), masked and bounded to 150 characters."""
    return {"type": "header", "text": {"type": "plain_text", "text": plain(text, MAX_HEADER_TEXT)}}


def context(*texts: str) -> dict[str, Any]:
    """A context block of mrkdwn elements (already built from escaped parts)."""
    elements = [{"type": "mrkdwn", "text": truncate(text, MAX_SECTION_TEXT) or " "} for text in texts]
    return {"type": "context", "elements": elements[:MAX_CONTEXT_ELEMENTS]}


def fit_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``message`` (``text`` + ``blocks``) within Slack's limits, secrets masked, saying what was cut.

    This is the last step before any message leaves Toilless. Builders should already have escaped outside text;
    this does not escape (it cannot tell markup from data) but guarantees the limits, the masking and encodable text
    (no lone surrogates or control characters). The whole message (fallback text and blocks) stays within
    40,000 characters; with blocks, the fallback text is bounded to :data:`MAX_FALLBACK_TEXT`.
    """
    fitted: dict[str, Any] = _sanitize_structure(mask_structure(dict(message)))
    blocks = fitted.get("blocks")
    text = fitted.get("text")
    if isinstance(text, str):
        fitted["text"] = truncate(text, MAX_FALLBACK_TEXT if blocks else MAX_MESSAGE_CHARS)
    if not blocks:
        return fitted
    budget = MAX_MESSAGE_CHARS - len(fitted.get("text") or "")
    kept: list[dict[str, Any]] = []
    cut_blocks = 0
    for index, block in enumerate(blocks):
        if not isinstance(block, dict):
            cut_blocks += 1
            continue
        block = _fit_block(block)
        size = _block_chars(block)
        last = index == len(blocks) - 1
        # Keep room for the closing note whenever something may still be cut.
        reserve = 0 if last and not cut_blocks else _CUT_NOTE_RESERVE
        if (len(kept) >= MAX_BLOCKS - 1 and not last) or len(kept) >= MAX_BLOCKS or size > budget - reserve:
            cut_blocks += len(blocks) - index
            break
        kept.append(block)
        budget -= size
    if cut_blocks:
        # Room for the note: a kept block it displaces is counted as cut too.
        cut_blocks += max(0, len(kept) - (MAX_BLOCKS - 1))
        kept = kept[: MAX_BLOCKS - 1]
        kept.append(context(f"_{cut_blocks:,} more block(s) cut to stay within Slack's limits; the run log has all._"))
    fitted["blocks"] = kept
    return fitted


def limit_problems(message: Mapping[str, Any]) -> list[str]:
    """What in ``message`` is over Slack's limits (empty: it can be posted as it is). For tests and assertions."""
    problems: list[str] = []
    text = message.get("text")
    blocks = message.get("blocks") or []
    if isinstance(text, str) and len(text) > (MAX_FALLBACK_TEXT if blocks else MAX_MESSAGE_CHARS):
        problems.append(f"text has {len(text):,} characters")
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"{len(blocks)} blocks (limit {MAX_BLOCKS})")
    for index, block in enumerate(blocks):
        if not isinstance(block, Mapping):
            problems.append(f"block {index} is not an object")
            continue
        limit = MAX_HEADER_TEXT if block.get("type") == "header" else MAX_SECTION_TEXT
        inner = block.get("text")
        if isinstance(inner, Mapping) and len(str(inner.get("text", ""))) > limit:
            problems.append(f"block {index} text has {len(str(inner.get('text', ''))):,} characters (limit {limit})")
        if isinstance(inner, Mapping) and not str(inner.get("text", "")).strip():
            problems.append(f"block {index} text is empty")
        fields = block.get("fields") or []
        if len(fields) > MAX_FIELDS:
            problems.append(f"block {index} has {len(fields)} fields (limit {MAX_FIELDS})")
        for field in fields:
            if len(str(field.get("text", ""))) > MAX_FIELD_TEXT:
                problems.append(f"block {index} has a field over {MAX_FIELD_TEXT} characters")
        elements = block.get("elements") or []
        if block.get("type") == "context" and len(elements) > MAX_CONTEXT_ELEMENTS:
            problems.append(f"block {index} has {len(elements)} context elements")
        for element in elements:
            if isinstance(element, Mapping) and len(str(element.get("text", ""))) > MAX_SECTION_TEXT:
                problems.append(f"block {index} has an element over {MAX_SECTION_TEXT} characters")
    total = len(text or "") + sum(_block_chars(block) for block in blocks if isinstance(block, Mapping))
    if total > MAX_MESSAGE_CHARS:
        problems.append(f"message has {total:,} characters (limit {MAX_MESSAGE_CHARS:,})")
    if _has_lone_surrogate(message):
        problems.append("message holds a lone surrogate (not encodable as UTF-8)")
    return problems


_CUT_NOTE_RESERVE = 200


def _sanitize(text: str) -> str:
    # A lone surrogate ("\ud800") cannot be encoded: Slack (and UTF-8 encoders) would fail on it.
    text = text.encode("utf-8", "replace").decode("utf-8")
    return _CONTROL.sub("?", text)


def _sanitize_structure(value: Any) -> Any:
    if isinstance(value, str):
        return _sanitize(value)
    if isinstance(value, dict):
        return {key: _sanitize_structure(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_sanitize_structure(item) for item in value]
    return value


def _escape_controls(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _host_of(entry: str) -> str:
    entry = entry.strip().lower()
    if not entry:
        return ""
    if "://" in entry:
        try:
            return (urlsplit(entry).hostname or "").lower()
        except ValueError:
            return ""
    return entry.split("/", 1)[0].split(":", 1)[0].strip(".")


def _is_ip_address(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _has_lone_surrogate(value: Any) -> bool:
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


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
