"""File locks that die with their process: who is running a job, and who creates a store.

A job holds ``<trainer.output_dir>/.losslab.lock`` (an ``flock``, with its pid written inside) from the moment
its MLflow run starts until it ends. The kernel drops the lock when the process dies, even by ``kill -9``, so a
RUNNING run whose folder's lock can be taken is an interrupted attempt (resumable), and one whose lock is held
belongs to a live process (never taken over). ``flock`` locks belong to an open file, so a probe from the same
process cannot release a lock that process holds.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from pathlib import Path

JOB_LOCK = ".losslab.lock"


class Lock:
    """A held lock on ``path``; :meth:`release` (or process exit) frees it."""

    def __init__(self, path: Path, fd: int):
        self.path, self.fd = path, fd

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self.fd, fcntl.LOCK_UN)
                os.close(self.fd)
            self.fd = None
            _held.pop(str(self.path), None)


_held: dict[str, Lock] = {}  # locks this process holds, by path (a second try from here reuses them)


def try_lock(path: str | Path, note: str | None = None) -> Lock | None:
    """Take the lock on ``path`` (created with its folders) without waiting: the held :class:`Lock`, or None
    when another process holds it. ``note`` (default: this pid) is written into the file for others to read."""
    path = Path(path)
    if str(path) in _held:
        return _held[str(path)]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return None
        raise
    os.ftruncate(fd, 0)
    os.write(fd, (note or this_process()).encode())
    lock = _held[str(path)] = Lock(path, fd)
    return lock


def this_process() -> str:
    """``pid <n> on <host>``: what a lock's file says about its holder."""
    import socket

    return f"pid {os.getpid()} on {socket.gethostname()}"


def holder(path: str | Path) -> str | None:
    """Who holds the lock on ``path`` (the note it wrote, e.g. ``pid 1234``), or None when nobody does (a lock
    file left by a dead process is free)."""
    path = Path(path)
    if str(path) in _held or not path.is_file():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        with contextlib.suppress(OSError):
            return os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        return "another process"
    finally:
        os.close(fd)
    return None


def job_lock_path(folder: str | Path) -> Path:
    return Path(folder) / JOB_LOCK


def release_all() -> None:
    for lock in list(_held.values()):
        lock.release()


@contextlib.contextmanager
def waiting(path: str | Path, timeout: float, what: str):
    """Hold the lock on ``path`` for the block, waiting up to ``timeout`` seconds for another holder; raise
    TimeoutError naming ``what`` if it is still held then."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"{what}: still locked by another process after {timeout:.0f} s "
                                       f"({path})") from None
                time.sleep(0.1)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
