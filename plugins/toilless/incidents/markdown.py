"""Outside text for the Markdown documents built from the incident record (post-mortems, handoffs). Pure."""

from __future__ import annotations

import re
from typing import Any

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|#@!~])")


def md(value: Any, limit: int = 200) -> str:
    """Outside text for Markdown: one line, special characters escaped (no HTML, mentions, links or table breaks),
    at most ``limit`` characters."""
    text = " ".join(str(value if value is not None else "").split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)
