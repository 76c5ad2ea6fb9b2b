"""Mask secrets in text Toilless posts, logs or returns: one place, used by every Slack message and error report.

Two layers, because either alone misses something:
- Airflow's own secrets masker (``airflow.sdk``), which knows every Connection password and Variable value that a task
  read in this process (and anything registered with ``mask_secret``);
- patterns for secrets that arrive inside outside text Airflow never saw: passwords in connection URIs
  (``postgresql://user:pw@host``), ``Authorization`` headers and bearer tokens, JWTs, Slack and GitHub tokens, AWS access
  key ids, bare AWS secret access keys and ``password=...``-style pairs.

Patterns are delimited by "not a letter or digit" rather than ``\\b``: ``_`` is a word character, so
``x_postgresql://u:pw@h`` or ``AKIA..._suffix`` would slip past a ``\\b``. Every pattern is bounded (no nested
unbounded repetition): this runs on outside text of any size (a 900 KB label, a 5 MB log line), and an unbounded
``[\\w-]*`` around a keyword took 36 s on 20,000 characters of ``a-a-a-...``. Masking errs on the side of hiding too
much: a port and path after ``user:`` in a URI with an ``@`` are masked too.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

_SENSITIVE_KEY = r"(?:password|passwd|pwd|secret|api[_\-]?key|access[_\-]?key|private[_\-]?key|token|credential)"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host -> scheme://user:***@host (any scheme: postgresql, redis, amqp, https, ...).
    # Greedy up to the last "@" of the token: a password may itself hold "@" or "/" when it was not URL-encoded.
    (
        re.compile(
            r"(?P<head>(?<![a-zA-Z0-9+.\-])[a-zA-Z][a-zA-Z0-9+.\-]{1,30}://[^\s:/@]{0,256}:)(?P<secret>[^\s]{1,1024})(?=@)"
        ),
        r"\g<head>" + MASK,
    ),
    # An Authorization header naming its scheme: whatever follows is a credential, however short (Basic of "u:pw"
    # is 8 characters of base64 without a digit).
    (
        re.compile(
            r"(?i)(?P<head>(?<![A-Za-z0-9])authorization[\"']?\s{0,5}[:=]\s{0,5}[\"']?(?:bearer|basic|token)\s{1,5})"
            r"(?P<secret>[A-Za-z0-9._~+/=\-]{1,4096})"
        ),
        r"\g<head>" + MASK,
    ),
    # Authorization: Bearer xyz / Basic xyz / token xyz (GitHub). A token has a digit or 16+ characters: "basic
    # information" is prose.
    (
        re.compile(
            r"(?i)(?P<head>(?<![A-Za-z0-9])(?:bearer|basic)\s{1,5}"
            r"|(?<![A-Za-z0-9])authorization[\"']?\s{0,5}[:=]\s{0,5}[\"']?(?:token\s{1,5})?)"
            r"(?P<secret>(?=[A-Za-z0-9._~+/=\-]{0,4096}\d)[A-Za-z0-9._~+/=\-]{8,4096}|[A-Za-z0-9._~+/=\-]{16,4096})"
        ),
        r"\g<head>" + MASK,
    ),
    # JSON Web Tokens (header.payload.signature, the header always starts with {" -> eyJ)
    (re.compile(r"(?<![A-Za-z0-9])eyJ[A-Za-z0-9_\-]{5,4096}\.[A-Za-z0-9_\-]{5,8192}\.[A-Za-z0-9_\-]{0,4096}"), MASK),
    # Slack tokens and webhook paths, GitHub tokens
    (re.compile(r"(?<![A-Za-z0-9])xox[abposre]-[A-Za-z0-9\-]{8,512}"), MASK),
    (re.compile(r"(?<![A-Za-z0-9])xapp-\d-[A-Za-z0-9\-]{8,512}"), MASK),
    (re.compile(r"(?P<head>hooks\.slack\.com/services/)[A-Za-z0-9/_\-]{1,512}"), r"\g<head>" + MASK),
    (re.compile(r"(?<![A-Za-z0-9])(?:gh[pousr]_[A-Za-z0-9]{20,255}|github_pat_[A-Za-z0-9_]{20,255})"), MASK),
    # AWS access key ids (the secret key itself is caught as aws_secret_access_key=...)
    (re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])"), MASK),
    # A bare AWS secret access key (40 characters of base64, pasted into an error or a label without its key name).
    # Mixed case and a digit are required, so a 40-hex-digit git commit or a long lowercase word stays readable.
    (
        re.compile(
            r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+]{0,39}[A-Z])(?=[A-Za-z0-9/+]{0,39}[a-z])(?=[A-Za-z0-9/+]{0,39}\d)"
            r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"
        ),
        MASK,
    ),
    # password=..., secret: ..., api_key=..., "token": "...", X-Api-Key: ...  The keyword anchors the match (fast), and
    # its tail must start with _ or -, so "secretsmanager:GetSecretValue" in an AccessDenied error stays readable.
    (
        re.compile(
            r"(?i)(?P<head>" + _SENSITIVE_KEY + r"s?(?:[_\-][\w\-]{0,40})?[\"']?\s{0,5}[=:]\s{0,5}[\"']?)"
            r"(?P<secret>[^\s\"',;&]{1,1024})"
        ),
        r"\g<head>" + MASK,
    ),
)

_SENSITIVE_KEY_NAME = re.compile(r"(?i)" + _SENSITIVE_KEY)


# A cheap necessary condition per pattern (same order as _PATTERNS), on the text and its ASCII lower case: a pattern
# whose condition fails cannot match, so its regex pass is skipped. Why: an intake acknowledgement masks about 60
# short strings (every escape()/code() piece, then fit_message's whole structure) and the nine passes over each were
# 65% of building it; a storm's worker built 5,000 of them (issue 12). The conditions are exact for ASCII text only
# (``(?i)`` also folds e.g. the Kelvin sign to "k"), so any other text runs every pattern. A replacement only ever
# inserts "***", which no condition contains, so conditions checked on the original text hold for every pass.
_RUN_OF_40 = re.compile(r"[A-Za-z0-9/+]{40}")
_KEY_WORDS = ("passw", "pwd", "secret", "key", "token", "credential")
_MAY_MATCH: tuple[Any, ...] = (
    lambda text, lower: "://" in text,
    lambda text, lower: "authorization" in lower,
    lambda text, lower: "bearer" in lower or "basic" in lower or "authorization" in lower,
    lambda text, lower: "eyJ" in text,
    lambda text, lower: "xox" in text,
    lambda text, lower: "xapp-" in text,
    lambda text, lower: "hooks.slack.com/services/" in text,
    lambda text, lower: ("gh" in text and "_" in text) or "github_pat_" in text,
    lambda text, lower: "AKIA" in text or "ASIA" in text,
    lambda text, lower: len(text) >= 40 and _RUN_OF_40.search(text) is not None,
    lambda text, lower: ("=" in text or ":" in text) and any(word in lower for word in _KEY_WORDS),
)


def mask_secrets(text: Any) -> str:
    """``text`` as a string with every secret Toilless can recognise replaced by ``***``."""
    value = text if isinstance(text, str) else str(text)
    value = _airflow_redact(value)
    if not value.isascii():
        for pattern, replacement in _PATTERNS:
            value = pattern.sub(replacement, value)
        return value
    lower = value.lower()
    for (pattern, replacement), may_match in zip(_PATTERNS, _MAY_MATCH, strict=True):
        if may_match(value, lower):
            value = pattern.sub(replacement, value)
    return value


def mask_structure(value: Any, *, max_depth: int = 20) -> Any:
    """Mask every string inside a JSON-like structure (dicts, lists); keys are kept.

    A string under a key that names a secret (``password``, ``api_key``, ``token``...) is replaced whole.
    """
    if max_depth <= 0:
        return MASK
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, dict):
        return {
            key: MASK
            if isinstance(item, str) and item and isinstance(key, str) and _SENSITIVE_KEY_NAME.search(key)
            else mask_structure(item, max_depth=max_depth - 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_structure(item, max_depth=max_depth - 1) for item in value]
    return value


def _airflow_redact(value: str) -> str:
    # Task code registers secrets with the Task SDK's masker, server-side code (the API server, the dag processor that
    # runs DAG-level callbacks) with airflow-core's: they are separate instances, so ask both.
    for redact in _airflow_redactors():
        try:
            redacted = redact(value)
        except Exception:  # masking must never be why a message is lost; patterns still apply
            redacted = value
        if isinstance(redacted, str):
            value = redacted
    return value


_redactors: list[Any] = []


def _airflow_redactors() -> list[Any]:
    # Looked up once per process (both are module functions that ask their masker on every call, so a secret registered
    # later is still masked): the two imports cost 30 us per call, and an intake ack masks about 60 strings.
    if not _redactors:
        _redactors.extend(_import_airflow_redactors())
    return _redactors


def _import_airflow_redactors() -> list[Any]:
    # Imported lazily: this module is imported by pure code and at DAG parse time.
    redactors = []
    try:
        from airflow.sdk._shared.secrets_masker import redact as sdk_redact

        redactors.append(sdk_redact)
    except ImportError:  # pragma: no cover - the Task SDK is always installed with Toilless
        pass
    try:
        from airflow._shared.secrets_masker import redact as core_redact

        if core_redact not in redactors:
            redactors.append(core_redact)
    except ImportError:  # a worker may run without airflow-core's shared modules
        pass
    return redactors
