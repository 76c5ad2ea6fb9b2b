"""Which files a log set may touch: globs under allowed roots, no ``..``, no symlink escapes.

Two checks, both needed:

* lexical, before anything is read: a glob (from config or a run's Params) has no ``..`` component and, made
  absolute, lies under a root. This is what rejects ``../../etc/passwd`` and ``/etc/*.conf`` with a clear
  error.
* physical, per matched file: the file itself is a regular file and not a symlink, and the real path of its
  directory lies under the real path of the root. This is what stops ``logs/evil -> /etc`` from taking the
  rotation out of the root.
"""

from __future__ import annotations

import glob
import os
import stat
from dataclasses import dataclass

from toilless.logrotation import naming


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


def physically_under(path: str, root: str) -> bool:
    """The real path of ``path``'s directory is under the real path of ``root`` (symlinks resolved)."""
    real_root = os.path.realpath(root)
    real_dir = os.path.realpath(os.path.dirname(path))
    return is_under(real_dir, real_root)


def find_live_files(root: str, patterns: list[str] | tuple[str, ...]) -> tuple[list[str], list[Skipped]]:
    """Live log files matched by ``patterns`` under ``root``, and what was skipped with why.

    Our own rotated files, archives and temporaries are never live files, whatever the glob says.
    """
    found: dict[str, None] = {}
    skipped: list[Skipped] = []
    for pattern in patterns:
        absolute = check_glob(pattern, root)
        for match in sorted(glob.glob(absolute)):
            if naming.is_ours(os.path.basename(match)) or match in found:
                continue
            reason = unsafe_reason(match, root)
            if reason:
                skipped.append(Skipped(match, reason))
                continue
            found[match] = None
    return list(found), skipped


def unsafe_reason(path: str, root: str) -> str | None:
    """Why ``path`` must not be touched, or None when it is a regular file physically under ``root``."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return "disappeared"
    if stat.S_ISLNK(info.st_mode):
        return "is a symlink (never followed)"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    if not physically_under(path, root):
        return f"resolves outside the root {root} through a symlinked directory"
    return None
