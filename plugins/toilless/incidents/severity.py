"""Severity levels P0-P3 and their response / escalation targets (SOPS.md, "Alert handling"). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from toilless.incidents.events import IncidentError

LEVELS = ("P0", "P1", "P2", "P3")


class InvalidSeverity(IncidentError):
    """A severity outside P0-P3."""


@dataclass(frozen=True)
class Targets:
    severity: str
    respond: timedelta
    escalate: timedelta


#: The seed teams' targets: P0 5 min / 15 min, P1 15 min / 1 h, P2 1 h / 4 h, P3 4 h / 24 h.
DEFAULT_TARGETS: dict[str, tuple[int, int]] = {"P0": (5, 15), "P1": (15, 60), "P2": (60, 240), "P3": (240, 1440)}


def parse_severity(value: Any) -> str:
    """``"p1"``/``"P1"`` -> ``"P1"``; anything else is a clear error."""
    text = str(value).strip().upper() if isinstance(value, str) else ""
    if text not in LEVELS:
        raise InvalidSeverity(f"severity {str(value)[:40]!r} is not one of {', '.join(LEVELS)}")
    return text


def targets(severity: str, settings: Mapping[str, Any] | None = None) -> Targets:
    """The response and escalation targets of ``severity`` (configured ``severities`` override the defaults)."""
    code = parse_severity(severity)
    configured = dict((settings or {}).get("severities") or {}).get(code) or {}
    respond, escalate = DEFAULT_TARGETS[code]
    try:
        respond = int(configured.get("respond_minutes", respond))
        escalate = int(configured.get("escalate_minutes", escalate))
    except (TypeError, ValueError) as err:
        raise IncidentError(f"severities.{code}: minutes must be whole numbers ({err})") from err
    if respond <= 0 or escalate <= 0:
        raise IncidentError(f"severities.{code}: minutes must be positive")
    return Targets(code, timedelta(minutes=respond), timedelta(minutes=escalate))
