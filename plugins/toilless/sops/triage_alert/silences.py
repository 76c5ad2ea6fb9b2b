"""Alertmanager silences as Toilless creates them: built and checked against API v2's contract. Pure, no Airflow.

Alertmanager API v2 (``POST /api/v2/silences``, PostableSilence): ``matchers`` (name, value, isRegex, isEqual), ``startsAt``,
``endsAt``, ``createdBy`` and ``comment``, all required. Alertmanager refuses an empty ``createdBy`` or ``comment``,
no matchers, a label name outside ``[a-zA-Z_][a-zA-Z0-9_]*``, a silence whose matchers all match the empty string, and
``endsAt`` not after ``startsAt`` or in the past. Toilless adds its own bound: a silence lasts at most
``max_silence_minutes`` (config); longer is refused before anything is sent.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from toilless.common.errors import InvalidInput

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*\Z")
#: Comment and createdBy are free text for Alertmanager; bounded here so a hostile label cannot bloat them.
MAX_COMMENT_CHARS = 1000
MAX_CREATED_BY_CHARS = 200
MAX_MATCHERS = 64
MAX_LABEL_VALUE_CHARS = 1024
#: Marks a comment as Toilless' own and names the incident (alert key), so a retry finds the silence it made.
INCIDENT_TAG = "toilless-incident:"


class SilenceError(InvalidInput):
    """A silence Toilless was asked to create breaks Alertmanager's contract or the configured maximum."""


@dataclass(frozen=True)
class SilenceRequest:
    matchers: tuple[dict[str, Any], ...]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str

    def body(self) -> dict[str, Any]:
        """The PostableSilence JSON."""
        return {
            "matchers": [dict(matcher) for matcher in self.matchers],
            "startsAt": _rfc3339(self.starts_at),
            "endsAt": _rfc3339(self.ends_at),
            "createdBy": self.created_by,
            "comment": self.comment,
        }


def matchers_for(labels: Mapping[str, str]) -> tuple[dict[str, Any], ...]:
    """Exactly the alert's labels: one equality matcher per label (``isEqual`` true, ``isRegex`` false)."""
    return tuple(
        {"name": str(name), "value": str(value), "isRegex": False, "isEqual": True}
        for name, value in sorted(labels.items())
    )


def build_silence(
    labels: Mapping[str, str],
    *,
    minutes: float,
    max_minutes: float,
    created_by: str,
    reason: str,
    incident: str,
    now: datetime,
) -> SilenceRequest:
    """The silence for one alert, or SilenceError saying what is wrong (nothing is sent then)."""
    if max_minutes <= 0:
        raise SilenceError(f"max_silence_minutes must be positive, got {max_minutes}")
    if minutes <= 0:
        raise SilenceError(f"a silence must last a positive number of minutes, got {minutes}")
    if minutes > max_minutes:
        raise SilenceError(
            f"silence of {minutes:g} minutes is over the configured maximum of {max_minutes:g} minutes "
            "(max_silence_minutes): nothing was silenced"
        )
    comment = f"{reason.strip()[: MAX_COMMENT_CHARS - 120]} [{INCIDENT_TAG}{incident}]"
    request = SilenceRequest(
        matchers=matchers_for(labels),
        starts_at=now,
        ends_at=now + timedelta(minutes=minutes),
        created_by=created_by,
        comment=comment,
    )
    check_silence(request.body(), now=now)
    return request


def check_silence(body: Mapping[str, Any], *, now: datetime) -> None:
    """Alertmanager API v2's rules for a PostableSilence; SilenceError listing each problem."""
    problems: list[str] = []
    matchers = body.get("matchers")
    if not isinstance(matchers, list) or not matchers:
        problems.append("matchers: at least one is required")
        matchers = []
    if len(matchers) > MAX_MATCHERS:
        problems.append(f"matchers: at most {MAX_MATCHERS}")
    all_match_empty = True
    for index, matcher in enumerate(matchers):
        if not isinstance(matcher, Mapping):
            problems.append(f"matchers[{index}]: must be an object")
            continue
        name, value = matcher.get("name"), matcher.get("value")
        if not isinstance(name, str) or not _LABEL_NAME.match(name):
            problems.append(f"matchers[{index}].name {str(name)[:80]!r} is not a label name")
        if not isinstance(value, str) or len(value) > MAX_LABEL_VALUE_CHARS:
            problems.append(f"matchers[{index}].value must be a string of at most {MAX_LABEL_VALUE_CHARS} characters")
        if matcher.get("isRegex") is not False or matcher.get("isEqual") is not True:
            problems.append(f"matchers[{index}]: Toilless silences only with isEqual true, isRegex false")
        if isinstance(value, str) and value != "":
            all_match_empty = False
    if matchers and all_match_empty:
        problems.append("matchers: every matcher matches the empty string (would silence everything)")
    for key, limit in (("createdBy", MAX_CREATED_BY_CHARS), ("comment", MAX_COMMENT_CHARS)):
        text = body.get(key)
        if not isinstance(text, str) or not text.strip() or len(text) > limit:
            problems.append(f"{key}: required, 1-{limit} characters")
    try:
        starts, ends = _parse(body.get("startsAt")), _parse(body.get("endsAt"))
    except (TypeError, ValueError):
        problems.append("startsAt / endsAt: RFC 3339 timestamps are required")
    else:
        if ends <= starts:
            problems.append("endsAt must be after startsAt")
        if ends <= now:
            problems.append("endsAt is in the past")
    if problems:
        raise SilenceError("silence refused: " + "; ".join(problems))


def check_silence_id(silence_id: str) -> str:
    """Alertmanager silence ids are UUIDs; anything else never reaches the URL path."""
    try:
        return str(uuid.UUID(str(silence_id)))
    except ValueError as err:
        raise SilenceError(f"{str(silence_id)[:80]!r} is not an Alertmanager silence id (a UUID)") from err


def filter_matcher(name: str, value: str) -> str:
    """An Alertmanager ``filter`` matcher ``name="value"`` with the value quoted as Alertmanager parses it."""
    if not _LABEL_NAME.match(name):
        raise SilenceError(f"{name[:80]!r} is not a label name")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{name}="{escaped}"'


def same_silence(existing: Mapping[str, Any], request: SilenceRequest, incident: str) -> bool:
    """An active or pending silence Alertmanager holds is the one this incident made (a retry must not add one)."""
    state = (existing.get("status") or {}).get("state")
    if state not in ("active", "pending"):
        return False
    if f"{INCIDENT_TAG}{incident}]" not in str(existing.get("comment", "")):
        return False
    have = sorted(
        (m.get("name"), m.get("value"), bool(m.get("isRegex")), m.get("isEqual", True))
        for m in existing.get("matchers") or []
    )
    want = sorted((m["name"], m["value"], m["isRegex"], m["isEqual"]) for m in request.matchers)
    return have == want


# -- the durable list of silences Toilless created (state Variable), for the weekly handoff -------------------------
def record(
    registry: Mapping[str, Any], silence_id: str, request: SilenceRequest, *, alertname: str, run_id: str
) -> dict[str, Any]:
    """The registry with this silence added (silence id -> what, why, until when)."""
    updated = dict(registry)
    updated[silence_id] = {
        "alertname": alertname,
        "matchers": {m["name"]: m["value"] for m in request.matchers},
        "startsAt": _rfc3339(request.starts_at),
        "endsAt": _rfc3339(request.ends_at),
        "createdBy": request.created_by,
        "comment": request.comment,
        "run_id": run_id,
    }
    return updated


def prune(registry: Mapping[str, Any], *, now: datetime, keep: timedelta) -> dict[str, Any]:
    """Drop entries that ended more than ``keep`` ago (the handoff lists the last week's)."""
    kept = {}
    for silence_id, entry in registry.items():
        try:
            ended = _parse(entry.get("expiredAt") or entry.get("endsAt"))
        except (TypeError, ValueError, AttributeError):
            continue
        if ended + keep > now:
            kept[silence_id] = entry
    return kept


def listing(registry: Mapping[str, Any], *, now: datetime) -> list[dict[str, Any]]:
    """Silences Toilless created, newest first, each with whether it is still in force (for the weekly handoff)."""
    rows = []
    for silence_id, entry in registry.items():
        ended = _parse(entry.get("expiredAt") or entry["endsAt"])
        rows.append({"id": silence_id, **entry, "active": ended > now})
    return sorted(rows, key=lambda row: row["startsAt"], reverse=True)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: Any) -> datetime:
    if not isinstance(text, str):
        raise TypeError("not a timestamp")
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("timestamp without a time zone")
    return moment
