"""Which files a log set may touch: globs under allowed roots, no ``..``, no symlink escapes.

Two checks, both needed:

* lexical, before anything is read: a glob (from config or a run's Params) has no ``..`` component and, made
  absolute, lies under a root. This is what rejects ``../../etc/passwd`` and ``/etc/*.conf`` with a clear
  error.
* physical, per matched file: the file itself is a regular file and not a symlink, has no other hard link, and
  the real path of its directory lies under the real path of the root *and* of an allowed root. This is what
  stops ``logs/evil -> /etc`` (or a log-set root that is itself a symlink) from taking the rotation out of the
  allowed roots, and ``ln /outside/x.log logs/x.log`` from truncating a file outside them.

Names that look like other tools' archives (``app.log.1.gz``, ``app.log-20260101``) and names with control
characters are never live files.
"""

from __future__ import annotations

import glob
import os
import re
import stat
from dataclasses import dataclass

from toilless.sops.log_rotation import naming

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class PathEscapeError(ValueError):
    """A path or glob points outside the allowed roots; nothing was touched."""


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


def is_under(path: str, root: str) -> bool:
    """Lexically: ``path`` is ``root`` or inside it (both absolute and normalised)."""
    root = root.rstrip(os.sep) or os.sep
    return path == root or path.startswith(root + os.sep) or root == os.sep


def check_glob(pattern: str, root: str) -> str:
    """The absolute, normalised form of ``pattern`` (absolute, or relative to ``root``) if it stays under
    ``root``.

    Raises :class:`PathEscapeError` for ``..`` components, empty patterns, NUL bytes, or a pattern outside
    ``root``.
    """
    if not isinstance(pattern, str) or not pattern.strip():
        raise PathEscapeError("an empty path or glob was given")
    if "\x00" in pattern:
        raise PathEscapeError(f"path {pattern!r} contains a NUL byte")
    parts = pattern.replace("\\", "/").split("/")
    if ".." in parts:
        raise PathEscapeError(f"path {pattern!r} contains '..': paths must stay under {root}")
    absolute = os.path.normpath(pattern if os.path.isabs(pattern) else os.path.join(root, pattern))
    if not is_under(absolute, os.path.normpath(root)):
        raise PathEscapeError(f"path {pattern!r} is outside the allowed root {root}")
    return absolute


def owning_root(pattern: str, roots: list[str]) -> str:
    """The deepest of ``roots`` that an absolute ``pattern`` lies under; raises :class:`PathEscapeError` if
    none."""
    if isinstance(pattern, str) and ".." in pattern.replace("\\", "/").split("/"):
        raise PathEscapeError(f"path {pattern!r} contains '..': paths must stay under {', '.join(roots)}")
    if not os.path.isabs(pattern):
        raise PathEscapeError(f"path {pattern!r} must be absolute (under one of: {', '.join(roots)})")
    candidates = []
    for root in roots:
        try:
            check_glob(pattern, root)
        except PathEscapeError:
            continue
        candidates.append(root)
    if not candidates:
        raise PathEscapeError(
            f"path {pattern!r} is outside the allowed roots ({', '.join(roots)}); nothing was touched"
        )
    return max(candidates, key=len)


def physically_under(path: str, root: str, allowed: tuple[str, ...] | list[str] = ()) -> bool:
    """The real path of ``path``'s directory is under the real path of ``root`` and, when ``allowed`` is given,
    under the real path of one of the allowed roots (symlinks resolved everywhere)."""
    real_dir = os.path.realpath(os.path.dirname(path))
    if not is_under(real_dir, os.path.realpath(root)):
        return False
    return not allowed or any(is_under(real_dir, os.path.realpath(item)) for item in allowed)


def root_escape_reason(root: str, allowed: tuple[str, ...] | list[str]) -> str | None:
    """Why a log set's ``root`` must not be used: it resolves (through a symlink anywhere in it) outside every
    allowed root. The name alone is checked when the config is read; this checks what it points at, now."""
    if not allowed:
        return None
    real_root = os.path.realpath(root)
    if any(is_under(real_root, os.path.realpath(item)) for item in allowed):
        return None
    return f"root {root} resolves to {real_root}, outside the allowed roots ({', '.join(allowed)}): nothing touched"


def find_live_files(
    root: str, patterns: list[str] | tuple[str, ...], allowed: tuple[str, ...] | list[str] = ()
) -> tuple[list[str], list[Skipped]]:
    """Live log files matched by ``patterns`` under ``root``, and what was skipped with why.

    Our own rotated files, archives and temporaries are never live files, whatever the glob says; other tools'
    archives are skipped with the reason.
    """
    found: dict[str, None] = {}
    skipped: list[Skipped] = []
    reported: set[str] = set()
    for pattern in patterns:
        absolute = check_glob(pattern, root)
        for match in sorted(glob.glob(absolute)):
            if naming.is_ours(os.path.basename(match)) or match in found or match in reported:
                continue
            reason = unsafe_reason(match, root, allowed) or _name_reason(os.path.basename(match))
            if reason:
                skipped.append(Skipped(match, reason))
                reported.add(match)
                continue
            found[match] = None
    return list(found), skipped


def _name_reason(name: str) -> str | None:
    foreign = naming.foreign_archive_reason(name)
    if foreign:
        return f"{foreign}: never treated as a live log"
    return None


def unsafe_reason(path: str, root: str, allowed: tuple[str, ...] | list[str] = ()) -> str | None:
    """Why ``path`` must not be touched, or None when it is a regular file with a single link, a name without
    control characters, physically under ``root`` and the allowed roots."""
    if _CONTROL.search(os.path.basename(path)):
        return "its name contains control characters (newline, tab, escape): refused"
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return "disappeared"
    if stat.S_ISLNK(info.st_mode):
        return "is a symlink (never followed)"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    if info.st_nlink > 1:
        return (
            f"has {info.st_nlink} hard links: another name, possibly outside the allowed roots, shares its "
            "content (never rotated)"
        )
    if not physically_under(path, root, allowed):
        return f"resolves outside the root {root} or the allowed roots through a symlink"
    return None
