"""Which files Toilless may read: regular files physically under an allowed root. Pure, no Airflow import.

One check for every file an SOP reads from a host (a log, its rotated siblings, an archive), because a file name is
outside input: ``order_processing.log.1`` may be a symlink to ``/etc/shadow`` or to another tenant's log, a FIFO that
blocks the reader forever, or a directory. A file passes when

* its real path (every symlink and ``..`` resolved) lies under the real path of one of the allowed roots, and
* it is a regular file, and
* the file actually opened is that same file (no swap between the check and the open).

Symlinks that stay inside a root are followed (log shippers and rotation tools create them); a symlink out of the
roots, in the file name or in any directory above it, is refused. ``toilless.sops.log_rotation.paths`` has the stricter
check rotation needs (it renames files, so it never follows a symlink at all).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from typing import BinaryIO

from toilless.common.errors import InvalidInput


class UnsafePathError(InvalidInput):
    """A path may not be read; the message says which and why. Nothing was read."""


def is_under(path: str, root: str) -> bool:
    """Lexically: ``path`` is ``root`` or inside it (both absolute and normalised)."""
    root = root.rstrip(os.sep) or os.sep
    return root == os.sep or path == root or path.startswith(root + os.sep)


def real_root(path: str | os.PathLike[str], roots: Sequence[str | os.PathLike[str]]) -> str | None:
    """The allowed root whose real path holds the real path of ``path``, or None."""
    real = os.path.realpath(path)
    for root in roots:
        if is_under(real, os.path.realpath(root)):
            return str(root)
    return None


def unreadable_reason(path: str | os.PathLike[str], roots: Sequence[str | os.PathLike[str]]) -> str | None:
    """Why ``path`` must not be read, or None when it is a regular file physically under one of ``roots``."""
    if not roots:
        return "no allowed directories are configured"
    text = os.fspath(path)
    if not os.path.isabs(text):
        return "is not an absolute path"
    if any(ord(char) < 32 for char in text):
        return "contains control characters"
    if real_root(text, roots) is None:
        target = os.path.realpath(text)
        via = f" (it resolves to {target})" if target != os.path.normpath(text) else ""
        return f"is outside the allowed directories ({', '.join(map(str, roots))}){via}"
    try:
        info = os.stat(text)
    except FileNotFoundError:
        return "does not exist"
    except OSError as err:
        return f"cannot be examined ({err.strerror})"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    return None


def check_readable(path: str | os.PathLike[str], roots: Sequence[str | os.PathLike[str]]) -> str:
    """The real path of ``path`` if it may be read; raises :class:`UnsafePathError` saying why not."""
    reason = unreadable_reason(path, roots)
    if reason:
        raise UnsafePathError(f"{os.fspath(path)} {reason}")
    return os.path.realpath(path)


def open_checked(path: str | os.PathLike[str], roots: Sequence[str | os.PathLike[str]]) -> BinaryIO:
    """Open ``path`` for reading (binary) only if it passes :func:`check_readable`.

    The real path is opened without following a last symlink and without blocking (a FIFO swapped in after the
    check cannot hang the reader), and the opened file must be the regular file that was checked.
    """
    real = check_readable(path, roots)
    checked = os.stat(real)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(real, flags)
    except OSError as err:
        raise UnsafePathError(f"{os.fspath(path)} cannot be opened ({err.strerror})") from err
    try:
        opened = os.fstat(descriptor)
        if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (checked.st_dev, checked.st_ino):
            raise UnsafePathError(f"{os.fspath(path)} changed while it was being opened")
        if hasattr(os, "set_blocking"):
            os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise
