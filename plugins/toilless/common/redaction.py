"""Mask secrets in text Toilless posts, logs or returns: one place, used by every Slack message and error report.

Two layers, because either alone misses something:
- Airflow's own secrets masker (``airflow.sdk``), which knows every Connection password and Variable value that a task
  read in this process;
- patterns for secrets that arrive inside outside text Airflow never saw: passwords in connection URIs
  (``postgresql://user:pw@host``), ``Authorization`` headers, Slack and GitHub tokens, AWS secret keys and
  ``password=...``-style pairs.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host -> scheme://user:***@host (any scheme: postgresql, redis, amqp, https, ...)
    (re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]{1,30}://[^\s:/@]*:)(?P<secret>[^\s@/]+)(?=@)"), r"\g<head>***"),
    # Authorization: Bearer xyz / Basic xyz
    (re.compile(r"(?i)(?P<head>\b(?:bearer|basic|token)\s+)(?P<secret>[A-Za-z0-9._~+/=\-]{8,})"), r"\g<head>***"),
    # Slack tokens and webhook paths, GitHub tokens
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{8,}"), MASK),
    (re.compile(r"(?P<head>hooks\.slack\.com/services/)[A-Za-z0-9/_\-]+"), r"\g<head>***"),
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"), MASK),
    # AWS access key ids and secret keys written as key=value
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), MASK),
    # password=..., secret: ..., api_key=..., token="..."
    (
        re.compile(
            r"(?i)(?P<head>\b[\w\-]*(?:password|passwd|pwd|secret|api[_\-]?key|access[_\-]?key|token)[\w\-]*"
            r"[\"']?\s*[=:]\s*[\"']?)(?P<secret>[^\s\"',;&]{3,})"
        ),
        r"\g<head>***",
    ),
)


def mask_secrets(text: Any) -> str:
    """``text`` as a string with every secret Toilless can recognise replaced by ``***``."""
    value = text if isinstance(text, str) else str(text)
    value = _airflow_redact(value)
    for pattern, replacement in _PATTERNS:
        value = pattern.sub(replacement, value)
    return value


def mask_structure(value: Any, *, max_depth: int = 20) -> Any:
    """Mask every string inside a JSON-like structure (dicts, lists); keys are kept."""
    if max_depth <= 0:
        return MASK
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, dict):
        return {key: mask_structure(item, max_depth=max_depth - 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_structure(item, max_depth=max_depth - 1) for item in value]
    return value


def _airflow_redact(value: str) -> str:
    # Import lazily: this module is imported by pure code and at DAG parse time.
    try:
        from airflow.sdk._shared.secrets_masker import redact
    except ImportError:  # pragma: no cover - Airflow is always installed with Toilless; pure use stays safe
        return value
    try:
        redacted = redact(value)
    except Exception:  # masking must never be why a message is lost; patterns still apply
        return value
    return redacted if isinstance(redacted, str) else value
