"""What the run tells people: the rotation report (always) and the low-storage warning. Pure text (Slack mrkdwn).

Inputs are the per-log-set results of :mod:`toilless.sops.log_rotation.engine` as they come out of XCom. File names,
reasons and error text come from outside (anyone who can create a file under a root names it): every one goes
through :mod:`toilless.common.slack` (``code`` for paths, ``escape`` for prose).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from toilless.common.slack import code, escape

#: Per log set and kind (skipped, errors, ...), at most this many lines; the rest is counted.
MAX_ITEMS = 20

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(count: float | None) -> str:
    if count is None:
        return "?"
    value = float(count)
    sign = "-" if value < 0 else ""
    value = abs(value)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            return f"{sign}{value:.0f} {unit}" if unit == "B" else f"{sign}{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def log_set_lines(result: dict[str, Any]) -> list[str]:
    """Report lines for one log set: rotated, compressed, deleted, bytes before/after, and anything left undone."""
    rotation = result.get("rotation") or {}
    kept = result.get("retention") or {}
    name = rotation.get("log_set") or result.get("log_set", "?")
    dry = rotation.get("dry_run", False)
    would = "would be " if dry else ""
    rotated = rotation.get("rotated", [])
    compressed = rotation.get("compressed", [])
    deleted = kept.get("deleted", [])
    rotated_bytes = sum(int(item.get("bytes") or 0) for item in rotated)
    source_bytes = sum(int(item.get("source_bytes") or 0) for item in compressed)
    archive_bytes = [item.get("archive_bytes") for item in compressed]
    deleted_bytes = sum(int(item.get("bytes") or 0) for item in deleted)
    lines = [
        f"*{escape(name, 100)}*: {len(rotated)} file(s) {would}rotated ({human_bytes(rotated_bytes)}, {rotation.get('mode')}), "
        f"{len(compressed)} {would}compressed ("
        + (
            f"{human_bytes(source_bytes)} → {human_bytes(sum(int(size) for size in archive_bytes))}"
            if compressed and None not in archive_bytes
            else human_bytes(source_bytes)
        )
        + f"), {len(deleted)} archive(s) {'would be ' if dry or kept.get('dry_run') else ''}deleted by retention "
        f"({human_bytes(deleted_bytes)}; "
        f"keep {escape(kept.get('retention', '?'))})"
    ]
    before = rotation.get("bytes_before")
    after = rotation.get("bytes_after")
    if not dry and before is not None and after is not None:
        after_retention = after - (0 if kept.get("dry_run") else deleted_bytes)
        lines.append(
            f"    {escape(name, 100)}: {human_bytes(before)} before → {human_bytes(after_retention)} after "
            f"(freed {human_bytes(before - after_retention)})"
        )
    if dry:
        lines += _bounded(f"    would rotate {code(item['live'])} → {code(item['rotated'])}" for item in rotated)
        lines += _bounded(f"    would compress {code(item['source'])} → {code(item['archive'])}" for item in compressed)
    if dry or kept.get("dry_run"):
        lines += _bounded(
            f"    would delete {code(item['path'])} ({human_bytes(item['bytes'])}): {escape(item['reason'])}"
            for item in deleted
        )
    else:
        lines += _bounded(
            f"    deleted {code(item['path'])} ({human_bytes(item['bytes'])}): {escape(item['reason'])}"
            for item in deleted
        )
    if dry:
        lines += _bounded(
            f"    would remove the unfinished temporary {code(path)}" for path in rotation.get("removed_tmp", [])
        )
    for item in rotated:
        if item.get("mode") == "copytruncate" and (item.get("grew_during_copy_bytes") or item.get("hole_bytes")):
            lines.append(
                f"    copytruncate {code(item['live'])}: grew {human_bytes(item.get('grew_during_copy_bytes'))} while "
                f"copied (all copied); unprotected window {item.get('window_microseconds')} µs"
                + (f"; {item['hole_bytes']} NUL bytes: the writer does not append" if item.get("hole_bytes") else "")
            )
    lines += _bounded(
        f"    left uncompressed: {code(item['path'])}: {escape(item['reason'])}" for item in rotation.get("pending", [])
    )
    lines += _bounded(
        f"    skipped {code(item['path'])}: {escape(item['reason'])}" for item in rotation.get("skipped", [])
    )
    lines += _bounded(
        f"    removed unfinished temporary {code(path)} (left by an interrupted run; redone)"
        for path in (rotation.get("removed_tmp", []) if not dry else [])
    )
    lines += _bounded(
        f"    finished an interrupted run: {code(item['archive'])} verified, {code(item['source'])} removed"
        for item in rotation.get("recovered", [])
    )
    lines += [
        f"    {what} not done, held by the action gate: {escape(part['held'])}"
        for what, part in (("rotation", rotation), ("retention", kept))
        if part.get("held")
    ]
    lines += _bounded(f"    ERROR: {escape(error)}" for error in [*rotation.get("errors", []), *kept.get("errors", [])])
    return lines


def _bounded(lines: Any, limit: int = MAX_ITEMS) -> list[str]:
    """At most ``limit`` lines, then one saying how many more there were (a glob can match thousands)."""
    items = list(lines)
    if len(items) <= limit:
        return items
    return [*items[:limit], f"    … and {len(items) - limit} more (see the task log)"]


def usage_line(measured: dict[str, Any]) -> str:
    use = measured["usage"]
    grown = measured.get("growth") or {}
    rate = grown.get("bytes_per_day")
    if rate is not None:
        growth_text = f"grows {human_bytes(rate)}/day (since {str(grown.get('since') or '?')[:10]})"
    elif grown.get("span_seconds") is not None:
        change = int(grown.get("change_bytes") or 0)
        growth_text = (
            f"{'+' if change >= 0 else ''}{human_bytes(change)} in {int(grown['span_seconds']) // 60} min over "
            f"{grown.get('samples', 2)} samples (a daily rate needs samples at least an hour apart)"
        )
    else:
        growth_text = "growth unknown yet (first measurement)"
    return (
        f"{code(use['mount'])} on {escape(measured.get('host', '?'), 100)}: {use['percent_used']:.1f}% used, "
        f"{human_bytes(use['available_bytes'])} free of {human_bytes(use['total_bytes'])}; {growth_text} "
        f"[warning {measured['warning_percent']:g}%, critical {measured['critical_percent']:g}%]"
    )


def low_storage_messages(measurements: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Channel → {status, lines} for mounts at or above warning; critical mounts go to ``urgent`` too."""
    by_channel: dict[str, dict[tuple[str, str], dict[str, Any]]] = defaultdict(dict)
    for measured in measurements:
        if measured.get("status") not in ("warning", "critical"):
            continue
        key = (measured.get("host", "?"), measured["usage"]["mount"])
        channels = [measured.get("channel") or "compliance"]
        if measured["status"] == "critical":
            channels.append("urgent")
        for channel in channels:
            seen = by_channel[channel].get(key)
            if seen is None or _rank(measured["status"]) > _rank(seen["status"]):
                by_channel[channel][key] = {**measured, "log_sets": sorted({measured["log_set"]})}
            else:
                seen["log_sets"] = sorted({*seen["log_sets"], measured["log_set"]})
    messages: dict[str, dict[str, Any]] = {}
    for channel, mounts in by_channel.items():
        status = max((item["status"] for item in mounts.values()), key=_rank)
        lines: list[str] = []
        for item in mounts.values():
            lines.append(
                f"{item['status'].upper()}: {usage_line(item)}; log sets: {escape(', '.join(item['log_sets']))}"
            )
            biggest = item.get("largest") or {}
            files = ", ".join(
                f"{code(entry['path'])} ({human_bytes(entry['bytes'])})" for entry in biggest.get("files", [])[:5]
            )
            dirs = ", ".join(
                f"{code(entry['path'])} ({human_bytes(entry['bytes'])})" for entry in biggest.get("directories", [])[:5]
            )
            if files:
                lines.append(f"    largest files: {files}")
            if dirs:
                lines.append(f"    largest directories: {dirs}")
        lines.append(
            "Still low after rotation: Compliance, please decide which logs may be cleared or request more storage."
        )
        messages[channel] = {"status": status, "lines": lines}
    return messages


def _rank(status: str) -> int:
    return {"ok": 0, "warning": 1, "critical": 2}.get(status, 0)
