"""Taking a live log file out of service without losing a line.

``rename`` (default): rename the live file to its rotated name (atomic), create a new empty live file with the
same mode and owner, then tell the writer to reopen (a signal to the pid in a pid file, or a command). Until
the writer reopens, its lines go to the rotated file; after, to the new one: every line lands in exactly one
of them. The rotated file is compressed only once no process holds it open any more (a write lease proves it in
one system call; otherwise /proc is searched), so late lines are never cut off.

``copytruncate``: for writers that cannot reopen. The live file is copied to its rotated name, then truncated
in place. Lines the writer appends between the last copy and the truncate are lost; that window is made as
short as the OS allows (the copy catches up with the writer until nothing new arrives, then truncates at once)
and its length, and how much the file grew while it was copied, are reported. Prefer ``rename`` whenever the
writer can reopen.
"""

from __future__ import annotations

import fcntl
import logging
import os
import stat
import time
from dataclasses import dataclass

from toilless.sops.log_rotation import naming
from toilless.sops.log_rotation.compress import fsync_dir, remove_if_exists
from toilless.sops.log_rotation.settings import Reopen

log = logging.getLogger(__name__)


class ReopenError(RuntimeError):
    """The writer could not be told to reopen (bad pid file, command failed)."""


@dataclass(frozen=True)
class CopyTruncateResult:
    bytes_copied: int
    grew_during_copy_bytes: int
    window_microseconds: float
    hole_bytes: int  # NUL bytes found at the start of the truncated file: a writer without O_APPEND kept its offset


def open_holders(path: str) -> list[int]:
    """Pids of processes holding ``path``'s inode open (Linux /proc). Processes we may not inspect are not
    listed."""
    return held_open([path]).get(path, [])


def nobody_holds(path: str) -> bool:
    """True if no open file description of ``path`` exists anywhere (this process's included), proven by the
    kernel granting a write lease (fcntl(2) F_SETLEASE: refused while any other descriptor has the file open for
    reading or writing, memory maps included). One system call instead of a pass over every process's
    descriptors. False when held, and when leases are unavailable here (not the file's owner without
    CAP_LEASE, a file system without leases): the caller then searches /proc."""
    try:
        # O_NONBLOCK: if someone else holds a lease, fail instead of waiting for them to release it.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
    except OSError:
        return False
    else:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)  # at once: an opener would otherwise wait for it
        return True
    finally:
        os.close(fd)


def held_open(paths: list[str]) -> dict[str, list[int]]:
    """For each of ``paths`` that some process holds open, the pids holding it: files a write lease proves free
    are not searched for; the rest in one pass over /proc (a pass costs 10-100 ms on a busy host)."""
    wanted: dict[tuple[int, int], str] = {}
    for path in paths:
        if nobody_holds(path):
            continue
        try:
            target = os.stat(path)
        except FileNotFoundError:
            continue
        wanted[(target.st_dev, target.st_ino)] = path
    holders: dict[str, list[int]] = {}
    if not wanted:
        return holders
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        fd_dir = f"/proc/{entry.name}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                info = os.stat(f"{fd_dir}/{fd}")
            except OSError:
                continue
            path = wanted.get((info.st_dev, info.st_ino))
            if path is not None and int(entry.name) not in holders.get(path, []):
                holders.setdefault(path, []).append(int(entry.name))
    return holders


def wait_until_released(paths: list[str], timeout_seconds: float) -> dict[str, list[int]]:
    """Wait until no process holds any of ``paths`` open, at most ``timeout_seconds``; returns those still held
    then (empty: all released)."""
    deadline = time.monotonic() + timeout_seconds
    delay = 0.01
    while True:
        held = held_open(paths)
        if not held or time.monotonic() >= deadline:
            return held
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def reopen_writer(reopen: Reopen) -> str:
    """Tell the writer to reopen its log; returns what was done. Raises :class:`ReopenError` when that
    fails."""
    if reopen.command:
        import subprocess  # only here: the engine's start (a CLI process per run) should not pay for it

        try:
            completed = subprocess.run(
                list(reopen.command),
                capture_output=True,
                text=True,
                timeout=reopen.timeout_seconds,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise ReopenError(f"reopen command {list(reopen.command)} failed: {err}") from err
        if completed.returncode != 0:
            raise ReopenError(
                f"reopen command {list(reopen.command)} exited {completed.returncode}: {completed.stderr.strip()[:300]}"
            )
        return f"ran {' '.join(reopen.command)}"
    if reopen.signal_number is not None and reopen.pid_file:
        try:
            with open(reopen.pid_file, encoding="ascii") as handle:
                pid = int(handle.read().strip())
        except FileNotFoundError:
            # No writer running: nothing holds the old file and the next writer start opens the new one.
            return f"no pid file {reopen.pid_file}: writer not running, nothing to reopen"
        except ValueError as err:
            raise ReopenError(f"pid file {reopen.pid_file} does not hold a pid") from err
        try:
            os.kill(pid, reopen.signal_number)
        except ProcessLookupError:
            return f"pid {pid} from {reopen.pid_file} is not running: nothing to reopen"
        except PermissionError as err:
            raise ReopenError(f"not allowed to signal pid {pid} ({reopen.signal}): {err}") from err
        return f"sent {reopen.signal} to pid {pid}"
    return "no reopen configured (the writer is expected to notice the rename itself)"


class RefusedError(RuntimeError):
    """The file cannot be rotated safely by this process (another owner, another hard link); nothing changed."""


def ownership_problem(info: os.stat_result) -> str | None:
    """Why this process cannot give a new file ``info``'s owner and group, or None.

    Checked before anything is renamed: a new live file owned by the wrong user locks the writer out of its own
    log. Only root may give a file away; anyone may set a group they belong to.
    """
    euid = os.geteuid()
    if euid == 0:
        return None
    if info.st_uid != euid:
        return (
            f"owned by uid {info.st_uid}, but rotation runs as uid {euid} and could not give the new file that "
            "owner: run the rotation as root or as the file's owner (nothing was changed)"
        )
    if info.st_gid != os.getegid() and info.st_gid not in os.getgroups():
        return (
            f"group {info.st_gid} is not a group of uid {euid}, so the new file could not keep it: run the rotation "
            "as root or add the user to that group (nothing was changed)"
        )
    return None


def _refuse_unsafe(info: os.stat_result, live: str) -> None:
    if info.st_nlink > 1:
        raise RefusedError(f"{live} has {info.st_nlink} hard links: refusing to rotate it (nothing was changed)")
    problem = ownership_problem(info)
    if problem:
        raise RefusedError(f"{live} is {problem}")


def rotate_rename(live: str, rotated: str) -> None:
    """Rename ``live`` to ``rotated`` and create a new empty ``live`` with the same mode and owner."""
    info = os.lstat(live)
    if not stat.S_ISREG(info.st_mode):
        raise FileNotFoundError(f"{live} is no longer a regular file")
    _refuse_unsafe(info, live)
    if os.path.lexists(rotated):
        raise FileExistsError(f"{rotated} already exists: refusing to overwrite it")
    os.rename(live, rotated)
    try:
        fd = os.open(live, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        pass  # the writer already reopened and created it: its file, its mode
    else:
        try:
            os.fchmod(fd, stat.S_IMODE(info.st_mode))
            if (info.st_uid, info.st_gid) != (os.geteuid(), os.getegid()):
                os.fchown(fd, info.st_uid, info.st_gid)
        finally:
            os.close(fd)
    fsync_dir(os.path.dirname(live))


def rotate_copytruncate(live: str, rotated: str) -> CopyTruncateResult:
    """Copy ``live`` to ``rotated`` (durably) then truncate ``live``, keeping the unprotected window
    minimal."""
    directory = os.path.dirname(live)
    tmp = os.path.join(directory, naming.tmp_name(os.path.basename(rotated)))
    if os.path.lexists(rotated):
        raise FileExistsError(f"{rotated} already exists: refusing to overwrite it")
    remove_if_exists(tmp)
    live_fd = os.open(live, os.O_RDWR | os.O_NOFOLLOW)
    try:
        info = os.fstat(live_fd)
        # On the open file, not the name: a hard link made after the path checks must not get truncated.
        _refuse_unsafe(info, live)
        start_size = info.st_size
        out_fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            copied = _copy_until_caught_up(live_fd, out_fd, 0)
            os.fchmod(out_fd, stat.S_IMODE(info.st_mode))
            if (info.st_uid, info.st_gid) != (os.geteuid(), os.getegid()):
                os.fchown(out_fd, info.st_uid, info.st_gid)
            os.fsync(out_fd)
            # Publish the copy before truncating: a crash from here on duplicates lines, it never loses them.
            os.rename(tmp, rotated)
            fsync_dir(directory)
            copied = _copy_until_caught_up(live_fd, out_fd, copied)
            # The unprotected window: from the last size check that found nothing new to the truncate.
            while True:
                window_start = time.perf_counter_ns()
                size = os.fstat(live_fd).st_size
                if size == copied:
                    os.ftruncate(live_fd, 0)
                    window_ns = time.perf_counter_ns() - window_start
                    break
                copied = _copy_until_caught_up(live_fd, out_fd, copied)
            os.fsync(out_fd)
        finally:
            os.close(out_fd)
        hole = _leading_nul_bytes(live_fd)
    except BaseException:
        remove_if_exists(tmp)
        raise
    finally:
        os.close(live_fd)
    return CopyTruncateResult(
        bytes_copied=copied,
        grew_during_copy_bytes=copied - start_size,
        window_microseconds=window_ns / 1000,
        hole_bytes=hole,
    )


def _copy_until_caught_up(src_fd: int, dst_fd: int, offset: int) -> int:
    """Copy ``src`` from ``offset`` to its current end into ``dst``, again while it keeps growing. Returns
    the end."""
    while True:
        size = os.fstat(src_fd).st_size
        if size < offset:
            raise RuntimeError("the live file shrank while it was copied: someone else truncated it")
        if size == offset:
            return offset
        while offset < size:
            try:
                sent = os.copy_file_range(src_fd, dst_fd, size - offset, offset, offset)
            except OSError:
                sent = _copy_chunk(src_fd, dst_fd, offset, size - offset)
            if sent == 0:
                return offset
            offset += sent


def _copy_chunk(src_fd: int, dst_fd: int, offset: int, count: int) -> int:
    data = os.pread(src_fd, min(count, 1 << 20), offset)
    written = 0
    while written < len(data):
        written += os.pwrite(dst_fd, data[written:], offset + written)
    return len(data)


def _leading_nul_bytes(fd: int) -> int:
    """A writer that does not use O_APPEND keeps writing at its old offset after a truncate, leaving NULs
    before it."""
    head = os.pread(fd, 1 << 16, 0)
    return len(head) - len(head.lstrip(b"\x00"))
