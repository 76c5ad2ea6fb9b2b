"""What a session is, whether it may be ended, and how its query is shown. Pure, no Airflow.

A session may be ended only if every one of these holds (the first that fails is the reason it is not):
it is not Toilless's own (its pid or an ``application_name`` starting with ``toilless``); it is an ordinary client
backend (never a walsender, autovacuum or background worker); its role is not a superuser and has no REPLICATION
attribute; its ``application_name`` is exactly one on the allow-list; it is idle in a transaction (or idle, only
where configured) for at least the configured age.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from toilless.common.redaction import mask_secrets

OWN_PREFIX = "toilless"
IDLE_IN_TRANSACTION = ("idle in transaction", "idle in transaction (aborted)")
IDLE = "idle"
CLIENT_BACKEND = "client backend"

_WHITESPACE = re.compile(r"\s+")
# String literals (with '' inside), E'' strings, dollar-quoted bodies, and numbers: the values a query carries (an
# e-mail address, a card number, a password in ALTER ROLE) never leave the database; the query's shape does.
_DOLLAR_QUOTED = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$.*?\$\1\$", re.DOTALL)
_STRING = re.compile(r"(?:[EeBbXxNn])?'(?:[^']|'')*'?")
_NUMBER = re.compile(r"(?<![A-Za-z_0-9$.])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\b")


@dataclass(frozen=True)
class Session:
    pid: int
    backend_start: str
    state: str
    state_change: str | None
    backend_type: str
    usename: str
    application_name: str
    client: str
    datname: str
    superuser: bool
    replication_role: bool
    state_seconds: float
    query_seconds: float | None
    xact_seconds: float | None
    query: str
    wait_event_type: str | None = None
    wait_event: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any], *, query_chars: int = 200, redact: bool = True) -> Session:
        return cls(
            pid=int(row["pid"]),
            backend_start=_iso(row["backend_start"]) or "",
            state=str(row.get("state") or "unknown"),
            state_change=_iso(row.get("state_change")),
            backend_type=str(row.get("backend_type") or "unknown"),
            usename=str(row.get("usename") or "(none)"),
            application_name=str(row.get("application_name") or ""),
            client=str(row.get("client") or "local"),
            datname=str(row.get("datname") or ""),
            superuser=bool(row.get("superuser")),
            replication_role=bool(row.get("replication_role")),
            state_seconds=float(row.get("state_seconds") or 0.0),
            query_seconds=_float(row.get("query_seconds")),
            xact_seconds=_float(row.get("xact_seconds")),
            query=shorten_query(row.get("query"), query_chars, redact=redact),
            wait_event_type=row.get("wait_event_type"),
            wait_event=row.get("wait_event"),
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def identity(self) -> tuple[int, str]:
        """pid + backend_start: a pid alone is reused by the server for the next session."""
        return (self.pid, self.backend_start)


def shorten_query(text: Any, limit: int, *, redact: bool = True) -> str:
    """A query as one short line: literals replaced by ``?`` (if ``redact``), secrets masked, whitespace collapsed,
    at most ``limit`` characters (saying it was cut)."""
    query = "" if text is None else str(text)
    if redact:
        query = _DOLLAR_QUOTED.sub("$?$", query)
        query = _STRING.sub("?", query)
        query = _NUMBER.sub("?", query)
    query = _WHITESPACE.sub(" ", mask_secrets(query)).strip()
    if len(query) > limit:
        query = query[: max(0, limit - 1)] + "…"
    return query


def is_own(session: Session, own_pid: int | None) -> bool:
    return session.pid == own_pid or session.application_name.lower().startswith(OWN_PREFIX)


def ending_refusal(session: Session, settings: Mapping[str, Any], *, own_pid: int | None) -> str | None:
    """Why ``session`` may not be ended, or None when it may (the order of checks is the order of importance)."""
    if is_own(session, own_pid):
        return "Toilless's own session"
    if session.backend_type != CLIENT_BACKEND:
        return f"a {session.backend_type} process (replication and server processes are never ended)"
    if session.superuser:
        return f"role {session.usename} is a superuser"
    if session.replication_role:
        return f"role {session.usename} has the REPLICATION attribute"
    if session.application_name not in settings["allowed_applications"]:
        return f"application {session.application_name or '(none)'!r} is not on the allow-list"
    if session.state in IDLE_IN_TRANSACTION:
        if not settings["end_sessions"]:
            return "ending sessions is switched off"
        if session.state_seconds < settings["idle_in_transaction_seconds"]:
            return f"idle in transaction for {session.state_seconds:.0f} s, under {settings['idle_in_transaction_seconds']:g} s"
        return None
    if session.state == IDLE:
        if not (settings["end_sessions"] and settings["end_idle"]):
            return "idle sessions are not ended (end_idle is off)"
        if session.state_seconds < settings["idle_seconds"]:
            return f"idle for {session.state_seconds:.0f} s, under {settings['idle_seconds']:g} s"
        return None
    return f"state {session.state!r}: only idle-in-transaction (and idle, if configured) sessions are ended"


#: Report categories of refusals (keyword in the reason -> category), so a storm gives a few lines, not one per session.
_REFUSAL_KINDS = (
    ("own session", "Toilless's own sessions"),
    ("never ended", "replication and other server processes"),
    ("superuser", "superusers"),
    ("REPLICATION", "roles with REPLICATION"),
    ("allow-list", "applications not on the allow-list"),
    ("switched off", "ending switched off"),
    ("end_idle is off", "idle sessions (end_idle is off)"),
    (" under ", "younger than the configured age"),
)


def refusal_kind(reason: str) -> str:
    """The report category of a refusal reason from :func:`ending_refusal`."""
    return next((kind for keyword, kind in _REFUSAL_KINDS if keyword in reason), "other")


def reason_to_end(session: Session) -> str:
    """Why it is ended, for the report."""
    what = "idle in transaction" if session.state in IDLE_IN_TRANSACTION else "idle"
    return f"{what} for {_duration(session.state_seconds)} (application {session.application_name}, role {session.usename})"


@dataclass(frozen=True)
class TerminationPlan:
    to_end: list[Session]
    #: Eligible but over the per-run cap.
    over_cap: list[Session]
    #: (session, reason) for sessions over an age that may not be ended.
    refused: list[tuple[Session, str]]


def plan_terminations(
    sessions: Iterable[Session], settings: Mapping[str, Any], *, own_pid: int | None, already_ended: int = 0
) -> TerminationPlan:
    """The eligible sessions, oldest first, at most ``max_terminations_per_run - already_ended``."""
    eligible: list[Session] = []
    refused: list[tuple[Session, str]] = []
    for session in sessions:
        if session.state not in (*IDLE_IN_TRANSACTION, IDLE):
            continue
        reason = ending_refusal(session, settings, own_pid=own_pid)
        if reason is None:
            eligible.append(session)
        else:
            refused.append((session, reason))
    eligible.sort(key=lambda session: -session.state_seconds)
    room = max(0, int(settings["max_terminations_per_run"]) - already_ended)
    return TerminationPlan(to_end=eligible[:room], over_cap=eligible[room:], refused=refused)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
