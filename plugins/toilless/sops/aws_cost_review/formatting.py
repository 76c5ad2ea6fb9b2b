"""Dollars and percents as the report, the issue drafts and the chart show them."""

from __future__ import annotations


def money(amount: float | None) -> str:
    if amount is None:
        return "n/a"
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


def percent_text(value: float | None) -> str:
    return "new" if value is None else f"{value:+.1f}%"
