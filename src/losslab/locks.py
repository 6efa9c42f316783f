"""File locks that die with their process: who is running a job, and who creates a store.

A job holds ``<trainer.output_dir>/.losslab.lock`` (a :class:`filelock.FileLock`: an ``flock``, with its pid
written inside) from the moment its MLflow run starts until it ends. The kernel drops the lock when the process
dies, even by ``kill -9``, so a RUNNING run whose folder's lock can be taken is an interrupted attempt
(resumable), and one whose lock is held belongs to a live process (never taken over). A lock this process holds is
kept here by path: a second try from this process reuses it, and a probe from this process never releases it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

JOB_LOCK = ".losslab.lock"

_held: dict[str, object] = {}  # the filelock.FileLock this process holds, by path


def try_lock(path: str | Path, note: str | None = None):
    """Take the lock on ``path`` (created with its folders) without waiting: the held ``filelock.FileLock``
    (``.release()`` or process exit frees it), or None when another process holds it. ``note`` (default: this
    pid) is written into the file for others to read."""
    from filelock import FileLock, Timeout

    path = Path(path)
    if (lock := _held.get(str(path))) is not None and lock.is_locked:
        return lock
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (note or this_process()).encode()

    def write_note(fd: int) -> None:
        os.ftruncate(fd, 0)
        os.pwrite(fd, text, 0)

    lock = FileLock(path, thread_local=False, fallback_to_soft=False, preserve_lock_file=True,
                    on_acquired=write_note)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        return None
    _held[str(path)] = lock
    return lock


def this_process() -> str:
    """``pid <n> on <host>``: what a lock's file says about its holder."""
    import socket

    return f"pid {os.getpid()} on {socket.gethostname()}"


def holder(path: str | Path) -> str | None:
    """Who holds the lock on ``path`` (the note it wrote, e.g. ``pid 1234``), or None when nobody does (a lock
    file left by a dead process is free)."""
    from filelock import lock_descriptor, unlock_descriptor

    path = Path(path)
    if ((lock := _held.get(str(path))) is not None and lock.is_locked) or not path.is_file():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        if lock_descriptor(fd, blocking=False):
            unlock_descriptor(fd)
            return None
        with contextlib.suppress(OSError):
            return os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        return "another process"
    finally:
        os.close(fd)


def job_lock_path(folder: str | Path) -> Path:
    return Path(folder) / JOB_LOCK


def release_all() -> None:
    while _held:
        _, lock = _held.popitem()
        with contextlib.suppress(OSError):
            lock.release(force=True)


@contextlib.contextmanager
def waiting(path: str | Path, timeout: float, what: str):
    """Hold the lock on ``path`` for the block, waiting up to ``timeout`` seconds for another holder; raise
    TimeoutError naming ``what`` if it is still held then."""
    from filelock import FileLock, Timeout

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, thread_local=False, fallback_to_soft=False, preserve_lock_file=True)
    try:
        lock.acquire(timeout=timeout, poll_interval=0.1)
    except Timeout:
        raise TimeoutError(f"{what}: still locked by another process after {timeout:.0f} s ({path})") from None
    try:
        yield
    finally:
        lock.release(force=True)
