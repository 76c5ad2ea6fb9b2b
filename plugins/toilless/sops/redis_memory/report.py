"""redis_memory's report: plain text lines (``toilless.common.reporting`` escapes them and fits them to Slack).

Key names come from Redis (anyone who can write a key chooses them): shown shortened and with secrets masked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from toilless.common.redaction import mask_secrets

#: Keys at least this big are worth a data-structure review.
BIG_KEY_BYTES = 10 * 1048576


def _mib(value: Any) -> str:
    return f"{int(value or 0) / 1048576:.1f} MiB"


def report_status(diagnosis: Mapping[str, Any], outcome: Mapping[str, Any]) -> str:
    level = diagnosis["assessment"]["level"]
    if level == "critical":
        return "error"
    return "warning" if level == "warning" else "ok"


def report_lines(settings: Mapping[str, Any], diagnosis: Mapping[str, Any], outcome: Mapping[str, Any]) -> list[str]:
    figures = diagnosis["figures"]
    assessment = diagnosis["assessment"]
    sample = diagnosis["sample"]
    used_pct = figures.get("used_pct")
    lines = [
        f"Redis {settings['redis_conn_id']}: {assessment['level'].upper()}",
        f"memory: {_mib(figures['used_bytes'])} used"
        + (f" of {_mib(figures['maxmemory_bytes'])} ({used_pct:.1f}%)" if used_pct is not None else " (no maxmemory)")
        + f", policy {figures['policy']}, fragmentation {figures['fragmentation_ratio']:.2f}, "
        f"{figures['evictions_per_second']:.1f} evictions/s over {figures['sample_seconds']:g} s, "
        f"{figures['keys']:,} keys ({figures['keys_with_ttl']:,} with TTL)",
    ]
    lines += [f"finding: {finding}" for finding in assessment["findings"]]
    lines += [f"advice: {advice}" for advice in assessment["advice"]]
    coverage = f"{sample['keys_sampled']:,} keys sampled in {sample['seconds']:g} s"
    if not sample["complete"]:
        coverage += f" (stopped by the {sample['stopped_by']}: figures are a sample)"
    lines.append(coverage)
    biggest = sample["biggest_keys"]
    if biggest:
        shown = ", ".join(f"{mask_secrets(key['key'])} ({_mib(key['bytes'])})" for key in biggest[:10])
        lines.append(f"biggest keys: {shown}")
        if any(int(key["bytes"]) >= BIG_KEY_BYTES for key in biggest):
            lines.append("advice: keys over 10 MiB block Redis while read or deleted: split them or use compact types")
    for prefix in sample["prefixes"]:
        if prefix["no_ttl_keys"]:
            idle = (
                f", {prefix['idle_no_ttl_keys']:,} idle >= {settings['cleanup']['idle_seconds']} s"
                f" (max idle {prefix['max_idle_seconds']:,} s)"
                if sample["with_idle"]
                else ""
            )
            lines.append(
                f"no TTL under {mask_secrets(prefix['prefix'])}: {prefix['no_ttl_keys']:,} of {prefix['keys']:,} "
                f"sampled keys, {_mib(prefix['no_ttl_bytes'])}{idle}"
            )
    if sample.get("prefixes_cut"):
        lines.append(f"{sample['prefixes_cut']} more prefixes not shown")
    lines += _outcome_lines(settings, outcome)
    if settings.get("dry_run_by_config"):
        lines.append("dry run by configuration (dry_run in the config): set it to false there to let it act")
    return lines + list(settings.get("notes") or [])


def _outcome_lines(settings: Mapping[str, Any], outcome: Mapping[str, Any]) -> list[str]:
    if not outcome.get("planned"):
        return [f"cleanup: {outcome['reason']}"]
    action = "set a TTL on" if settings["cleanup"]["action"] == "expire" else "unlinked"
    lines = [f"cleanup: {outcome['reason']}"]
    for prefix in outcome["prefixes"]:
        line = (
            f"{mask_secrets(prefix['prefix'])}: {action} {prefix['acted']:,} of {prefix['candidates']:,} candidates "
            f"({prefix['scanned']:,} keys scanned"
        )
        if prefix["left_alone"]:
            line += f"; {prefix['left_alone']:,} got a TTL or were used meanwhile and were left alone"
        line += f"; {prefix['stopped_by']})"
        if prefix["examples"]:
            line += " e.g. " + ", ".join(mask_secrets(key) for key in prefix["examples"])
        lines.append(line)
    gate = outcome.get("gate")
    if gate and not gate.get("allowed"):
        lines.append(f"gate: {gate['reason']}")
    before, after = outcome.get("used_bytes_before"), outcome.get("used_bytes_after")
    if before is not None and after is not None:
        lines.append(
            f"memory before/after: {_mib(before)} -> {_mib(after)}"
            + (
                " (expired keys free their memory when the TTL runs out)"
                if settings["cleanup"]["action"] == "expire"
                else ""
            )
        )
    lines.append(f"total this run: {outcome['acted']:,} of at most {settings['cleanup']['max_keys_per_run']:,}")
    return lines
