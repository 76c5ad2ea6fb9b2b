"""Caller authentication for the intake: a bearer token or HTTP basic auth, compared in constant time. Pure."""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass


@dataclass(frozen=True, repr=False)
class Credentials:
    """The secret callers must present. ``login`` is only checked for basic auth, and only when set."""

    password: str
    login: str = ""

    def __repr__(self) -> str:  # never print the secret, not even in a traceback
        return f"Credentials(login={self.login!r}, password=***)"


def authorized(header: str | None, credentials: Credentials) -> bool:
    """True when ``Authorization`` carries the configured secret as ``Bearer <secret>`` or ``Basic <login:secret>``."""
    if not header or not credentials.password:
        return False
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    expected = credentials.password.encode()
    if scheme.lower() == "bearer":
        return hmac.compare_digest(value.encode(), expected)
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return False
        login, sep, password = decoded.partition(b":")
        if not sep:
            return False
        # Both comparisons always run, so timing does not tell which part was wrong.
        login_ok = hmac.compare_digest(login, credentials.login.encode()) if credentials.login else True
        password_ok = hmac.compare_digest(password, expected)
        return login_ok and password_ok
    return False
