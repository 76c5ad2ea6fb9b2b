"""Log sets as data: parse and validate the ``log_rotation`` config into :class:`LogSet` objects.

The config is include/config/log_rotation.yaml deep-merged with the Variable ``toilless_log_rotation``. Every
log set inherits ``defaults`` and overrides what it needs. Anything malformed raises
:class:`LogRotationConfigError` naming the log set and the key, before any file is touched.
"""

from __future__ import annotations

import os
import re
import signal
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from toilless.common.config import deep_merge

COMPRESSIONS = ("zstd", "gzip")
#: zstd parameters a log set may set beside its level (zstandard.ZstdCompressionParameters names) and their bounds.
ZSTD_PARAMETERS = {
    "window_log": (10, 27),
    "hash_log": (6, 26),
    "chain_log": (6, 28),
    "search_log": (1, 26),
    "min_match": (3, 7),
    "target_length": (0, 131072),
    "strategy": ("fast", "dfast", "greedy", "lazy", "lazy2", "btlazy2", "btopt", "btultra", "btultra2"),
    "enable_ldm": (0, 1),
}
MODES = ("rename", "copytruncate")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*\Z", re.IGNORECASE)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z")


class LogRotationConfigError(ValueError):
    """The log_rotation config or a run's Params are malformed; the message says which setting and why."""


def parse_size(value: Any, what: str) -> int | None:
    """``"100MiB"``, ``"1.5 GB"``, ``1048576`` → bytes; ``None``/``""`` → None (no limit)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise LogRotationConfigError(f"{what}: {value!r} is not a size")
    if isinstance(value, int | float):
        if value < 0:
            raise LogRotationConfigError(f"{what}: size must not be negative, got {value!r}")
        return int(value)
    match = _SIZE.match(str(value))
    if not match:
        raise LogRotationConfigError(f"{what}: {value!r} is not a size like '100MiB', '2GB' or 1048576")
    number, unit = float(match.group(1)), (match.group(2) or "").lower()
    letter = unit[:1] if unit[:1] in ("k", "m", "g", "t") else ""
    if not letter:
        return int(number)
    power = "kmgt".index(letter) + 1
    # "MB" is decimal; "MiB" and a bare "M" are binary, as in logrotate's "size 100M".
    decimal = unit.endswith("b") and "i" not in unit
    return int(number * (1000**power if decimal else 1024**power))


@dataclass(frozen=True)
class Retention:
    """Keep an archive only while it is within every configured limit; ``None`` means no such limit."""

    max_age_days: float | None = None
    max_archives: int | None = None
    max_total_bytes: int | None = None

    def describe(self) -> str:
        parts = []
        if self.max_age_days is not None:
            parts.append(f"{self.max_age_days:g} days")
        if self.max_archives is not None:
            parts.append(f"{self.max_archives} archives")
        if self.max_total_bytes is not None:
            from toilless.sops.log_rotation.report import human_bytes

            parts.append(f"{human_bytes(self.max_total_bytes)} in total")
        return ", ".join(parts) or "keep everything"


@dataclass(frozen=True)
class Reopen:
    """How a writer is told to reopen its log after a rename: a signal to the pid in a pid file, or a
    command."""

    signal: str | None = None
    pid_file: str | None = None
    command: tuple[str, ...] = ()
    timeout_seconds: float = 10.0

    @property
    def signal_number(self) -> int | None:
        if not self.signal:
            return None
        name = self.signal.upper()
        return int(getattr(signal, name if name.startswith("SIG") else f"SIG{name}"))


@dataclass(frozen=True)
class LogSet:
    """One set of live log files rotated together, with its policy."""

    name: str
    root: str
    globs: tuple[str, ...]
    mode: str = "rename"
    compression: str = "zstd"
    compression_level: int = 2
    compression_threads: int = 0
    #: Overrides of the zstd level's parameters (see ZSTD_PARAMETERS); empty: the level's own.
    zstd_parameters: dict[str, Any] = field(default_factory=dict)
    #: zstd only: per file, use cheaper settings (a fast zstd level, or gzip members by libdeflate) when a sample
    #: shows they beat gzip -6 anyway (compress.choose_compression); the archive's extension follows the choice.
    adaptive_compression: bool = False
    min_size_bytes: int = 1
    retention: Retention = field(default_factory=Retention)
    archive_mode: int | None = None
    archive_owner: str | None = None
    archive_group: str | None = None
    reopen: Reopen = field(default_factory=Reopen)
    warning_percent: float = 70.0
    critical_percent: float = 90.0
    channel: str = "compliance"
    queue: str | None = None
    largest: int = 10
    #: The configured allowed roots: every file touched must resolve (symlinks followed) under one of them.
    allowed_roots: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (XCom), read back with :func:`log_set_from_dict`."""
        data = asdict(self)
        data["globs"] = list(self.globs)
        data["allowed_roots"] = list(self.allowed_roots)
        data["reopen"]["command"] = list(self.reopen.command)
        return data


def log_set_from_dict(data: dict[str, Any]) -> LogSet:
    """Inverse of :meth:`LogSet.as_dict`."""
    values = dict(data)
    values["globs"] = tuple(values["globs"])
    values["allowed_roots"] = tuple(values.get("allowed_roots") or ())
    values["retention"] = Retention(**values["retention"])
    reopen = dict(values["reopen"])
    reopen["command"] = tuple(reopen.get("command") or ())
    values["reopen"] = Reopen(**reopen)
    return LogSet(**values)


def allowed_roots(config: dict[str, Any]) -> list[str]:
    """The configured roots, absolute and normalised; every log set root must be one of them or under one."""
    roots = config.get("allowed_roots") or []
    if not isinstance(roots, list) or not roots:
        raise LogRotationConfigError("allowed_roots: list at least one directory the DAG may touch")
    result = []
    for root in roots:
        if not isinstance(root, str) or not os.path.isabs(root):
            raise LogRotationConfigError(f"allowed_roots: {root!r} is not an absolute path")
        result.append(os.path.normpath(root))
    return result


def parse_log_sets(config: dict[str, Any]) -> dict[str, LogSet]:
    """Every configured log set, validated. Raises :class:`LogRotationConfigError` on the first problem."""
    roots = allowed_roots(config)
    defaults = config.get("defaults") or {}
    raw_sets = config.get("log_sets") or {}
    if not isinstance(raw_sets, dict) or not raw_sets:
        raise LogRotationConfigError("log_sets: configure at least one log set (a mapping name → settings)")
    return {name: _parse_log_set(name, deep_merge(defaults, spec or {}), roots) for name, spec in raw_sets.items()}


def _parse_log_set(name: str, spec: dict[str, Any], roots: list[str]) -> LogSet:
    where = f"log_sets.{name}"
    if not _NAME.match(str(name)):
        raise LogRotationConfigError(f"{where}: a log set name is letters, digits, '.', '_' or '-'")
    root = spec.get("root")
    if not isinstance(root, str) or not os.path.isabs(root):
        raise LogRotationConfigError(f"{where}.root: an absolute directory is required, got {root!r}")
    root = os.path.normpath(root)
    if not any(_is_under(root, allowed) for allowed in roots):
        raise LogRotationConfigError(f"{where}.root: {root} is not under allowed_roots ({', '.join(roots)})")
    globs = spec.get("globs")
    if isinstance(globs, str):
        globs = [globs]
    if not globs or not all(isinstance(pattern, str) and pattern for pattern in globs):
        raise LogRotationConfigError(f"{where}.globs: list at least one file glob, e.g. ['*.log']")
    mode = spec.get("mode", "rename")
    if mode not in MODES:
        raise LogRotationConfigError(f"{where}.mode: {mode!r} is not one of {', '.join(MODES)}")
    compression = spec.get("compression", "zstd")
    if compression not in COMPRESSIONS:
        raise LogRotationConfigError(f"{where}.compression: {compression!r} is not one of {', '.join(COMPRESSIONS)}")
    level = int(spec.get("compression_level") or (2 if compression == "zstd" else 6))
    limits = (1, 19) if compression == "zstd" else (1, 9)
    if not limits[0] <= level <= limits[1]:
        raise LogRotationConfigError(f"{where}.compression_level: {level} is outside {limits[0]}..{limits[1]}")
    zstd_parameters = _zstd_parameters(spec.get("zstd_parameters"), where)
    retention = spec.get("retention") or {}
    max_age = retention.get("max_age_days")
    max_archives = retention.get("max_archives")
    if max_age is not None and float(max_age) < 0:
        raise LogRotationConfigError(f"{where}.retention.max_age_days must not be negative")
    if max_archives is not None and int(max_archives) < 0:
        raise LogRotationConfigError(f"{where}.retention.max_archives must not be negative")
    warning = float(spec.get("warning_percent", 70))
    critical = float(spec.get("critical_percent", 90))
    if not 0 < warning <= critical <= 100:
        raise LogRotationConfigError(
            f"{where}: need 0 < warning_percent ({warning}) <= critical_percent ({critical}) <= 100"
        )
    reopen = spec.get("reopen") or {}
    command = reopen.get("command") or ()
    if isinstance(command, str):
        raise LogRotationConfigError(
            f"{where}.reopen.command: give an argv list (no shell), e.g. ['nginx', '-s', 'reopen']"
        )
    reopen_settings = Reopen(
        signal=reopen.get("signal") or None,
        pid_file=reopen.get("pid_file") or None,
        command=tuple(str(part) for part in command),
        timeout_seconds=float(reopen.get("timeout_seconds", 10)),
    )
    try:
        reopen_settings.signal_number  # noqa: B018 - validates the signal name now, not mid-rotation
    except AttributeError as err:
        raise LogRotationConfigError(f"{where}.reopen.signal: unknown signal {reopen_settings.signal!r}") from err
    archive_mode = spec.get("archive_mode")
    if archive_mode is not None:
        try:
            archive_mode = int(str(archive_mode), 8)
        except ValueError as err:
            raise LogRotationConfigError(
                f"{where}.archive_mode: {archive_mode!r} is not an octal mode like '0640'"
            ) from err
    return LogSet(
        name=name,
        root=root,
        globs=tuple(globs),
        mode=mode,
        compression=compression,
        compression_level=level,
        compression_threads=int(spec.get("compression_threads") or 0),
        zstd_parameters=zstd_parameters if compression == "zstd" else {},
        adaptive_compression=_flag(spec.get("adaptive_compression", False), f"{where}.adaptive_compression"),
        min_size_bytes=parse_size(spec.get("min_size", 1), f"{where}.min_size") or 1,
        retention=Retention(
            max_age_days=float(max_age) if max_age is not None else None,
            max_archives=int(max_archives) if max_archives is not None else None,
            max_total_bytes=parse_size(retention.get("max_total_size"), f"{where}.retention.max_total_size"),
        ),
        archive_mode=archive_mode,
        archive_owner=spec.get("archive_owner") or None,
        archive_group=spec.get("archive_group") or None,
        reopen=reopen_settings,
        warning_percent=warning,
        critical_percent=critical,
        channel=str(spec.get("channel") or "compliance"),
        queue=spec.get("queue") or None,
        largest=int(spec.get("largest", 10)),
        allowed_roots=tuple(roots),
    )


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise LogRotationConfigError(f"{where}: true or false, got {value!r}")
    return value


def _zstd_parameters(value: Any, where: str) -> dict[str, Any]:
    if value in (None, {}):
        return {}
    if not isinstance(value, dict):
        raise LogRotationConfigError(f"{where}.zstd_parameters: a mapping like {{min_match: 6}} is required")
    result: dict[str, Any] = {}
    for key, item in value.items():
        bounds = ZSTD_PARAMETERS.get(key)
        if bounds is None:
            raise LogRotationConfigError(
                f"{where}.zstd_parameters.{key}: unknown; known: {', '.join(sorted(ZSTD_PARAMETERS))}"
            )
        if key == "strategy":
            if item not in bounds:
                raise LogRotationConfigError(f"{where}.zstd_parameters.strategy: {item!r} is not one of {bounds}")
            result[key] = item
            continue
        if isinstance(item, bool) and key != "enable_ldm":
            raise LogRotationConfigError(f"{where}.zstd_parameters.{key}: {item!r} is not a number")
        low, high = bounds
        if not isinstance(item, int) or not low <= int(item) <= high:
            raise LogRotationConfigError(f"{where}.zstd_parameters.{key}: {item!r} is outside {low}..{high}")
        result[key] = int(item)
    return result


def _is_under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def state_dir(config: dict[str, Any]) -> Path:
    """Where per-host state lives (locks, usage history, remembered compression choices): ``state_dir`` or
    $AIRFLOW_HOME/toilless/log_rotation."""
    configured = config.get("state_dir") or ""
    if configured:
        return Path(configured)
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    return Path(home) / "toilless" / "log_rotation"
