"""Msk cpu headroom: the decision and the report's lines, as plain functions over plain data (no Airflow, no network)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Decision:
    """Whether to act on a target, and why (the reason goes into the report)."""

    act: bool
    target: str
    value: float
    threshold: float
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(value: float, *, threshold: float, allow_action: bool, target: str) -> Decision:
    """Act when ``value`` has reached ``threshold`` and the action is allowed by configuration and Params."""
    if value < threshold:
        return Decision(False, target, value, threshold, f"{value:g} is below the threshold {threshold:g}")
    if not allow_action:
        reason = f"{value:g} reached the threshold {threshold:g}, but the action is switched off: report only"
        return Decision(False, target, value, threshold, reason)
    return Decision(True, target, value, threshold, f"{value:g} reached the threshold {threshold:g}")


def report_status(decision: Mapping[str, Any], outcome: Mapping[str, Any]) -> str:
    """``ok`` when nothing was needed or the action was taken; ``warning`` when it was needed but not taken."""
    return "warning" if decision["act"] and not outcome["acted"] else "ok"


def report_lines(decision: Mapping[str, Any], outcome: Mapping[str, Any], notes: list[str]) -> list[str]:
    """The report's lines (plain text: the report escapes them)."""
    lines = [f"{decision['target']}: {decision['reason']}"]
    if decision["act"]:
        lines.append(("acted: " if outcome["acted"] else "not acted: ") + str(outcome["reason"]))
    return lines + list(notes)
