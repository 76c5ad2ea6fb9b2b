"""HTTP endpoints probed from outside the app (a health URL, the public site): one GET, bounded in time and size.

No Connection: the URLs come from the SOP's checked configuration (http(s) only). Redirects are not followed (a
redirect is an answer), at most ``max_bytes`` of the body are read, and errors come back as text, never raised:
an unreachable endpoint is the finding, not a failure of the probe.
"""

from __future__ import annotations

import time
from typing import Any

from toilless.common.redaction import mask_secrets

MAX_BODY = 4096


def probe(url: str, *, timeout: float, kind: str = "public") -> dict[str, Any]:
    """``{url, kind, ok, status, error, elapsed_ms}``; ``ok`` when the answer's status is below 500."""
    import requests

    started = time.monotonic()
    result: dict[str, Any] = {"url": url, "kind": kind, "ok": False, "status": None, "error": ""}
    try:
        with requests.get(url, timeout=timeout, allow_redirects=False, stream=True) as response:
            response.raw.read(MAX_BODY, decode_content=False)
            result["status"] = response.status_code
            result["ok"] = response.status_code < 500
    except requests.RequestException as err:
        result["error"] = mask_secrets(f"{type(err).__name__}: {err}")[:300]
    result["elapsed_ms"] = round((time.monotonic() - started) * 1000, 1)
    return result
