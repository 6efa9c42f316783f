"""What goes wrong around a run rather than in it — a twin already running, a full disk, a busy or read-only
store, a signal — each turned into one line that says what happened and what to do.

:func:`explain` maps an exception to such an error (or returns it unchanged); ``run.main`` prints its message
and exits with its ``exit_code``. :func:`stopping_on_sigterm` makes SIGTERM (what a scheduler sends before it
kills a job) end the run the way Ctrl-C does: the MLflow run ends KILLED and the checkpoints stay.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import signal
import threading
from pathlib import Path

from losslab.errors import UsageError


class JobRunning(UsageError):
    """The same job (same composed config) is running in a live process: it is not started twice."""

    exit_code = 1


class NoSpace(UsageError):
    """A disk the job writes to is full."""

    exit_code = 1


class StoreError(UsageError):
    """The MLflow store cannot be written: busy past the wait, read-only, or its path cannot exist."""

    exit_code = 1


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGINT) arrived: the job stops as Ctrl-C stops it, its run ends KILLED."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


@contextlib.contextmanager
def stopping_on_sigterm():
    """SIGTERM raises :class:`Terminated` in the main thread for the block (elsewhere: unchanged)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Terminated(signum)

    old = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


_FULL = ("no space left on device", "unexpected pos", "database or disk is full", "disk quota exceeded",
         "file too large")


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _existing(path: str | Path) -> Path:
    path = Path(path).resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _fullest(paths) -> tuple[Path, int] | None:
    """The path among ``paths`` whose disk has the fewest bytes free, and those bytes."""
    best = None
    for p in paths:
        with contextlib.suppress(OSError):
            free = shutil.disk_usage(_existing(p)).free
            if best is None or free < best[1]:
                best = (Path(p), free)
    return best


def no_space(exc: BaseException, places=()) -> NoSpace | None:
    """A :class:`NoSpace` if ``exc`` (or what caused it) is a full disk, naming the folder: the file the system
    named, else the fullest of ``places`` (torch's ``unexpected pos`` names none)."""
    for err in _chain(exc):
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            where = Path(err.filename).parent if getattr(err, "filename", None) else None
            break
        if any(s in str(err).lower() for s in _FULL):
            where = None
            break
    else:
        return None
    if where is None:
        full = _fullest(places)
        where = full[0] if full else Path.cwd()
    free = _fullest([where])
    left = f" ({free[1] / 2**20:.1f} MiB free)" if free else ""
    return NoSpace(f"no space left on {where}{left}: free some space (or point paths.output_dir / "
                   "trainer.output_dir elsewhere) and run the same command again; it resumes from the last "
                   "complete checkpoint")


def places(cfg) -> list[str]:
    """The folders a job writes to: its checkpoints, its run dir, the store's folder."""
    out = []
    with contextlib.suppress(Exception):
        out.append(str(cfg.trainer.output_dir))
    with contextlib.suppress(Exception):
        uri = str(cfg.tracking.uri)
        if uri.startswith("sqlite:///"):
            out.append(str(Path(uri[len("sqlite:///"):]).parent))
    with contextlib.suppress(Exception):
        out.append(str(cfg.paths.output_dir))
    return out


def explain(exc: BaseException, cfg=None) -> BaseException:
    """``exc`` as a one-line error when it is one of the faults this module knows, else ``exc`` itself."""
    if isinstance(exc, UsageError):
        return exc
    full = no_space(exc, places(cfg) if cfg is not None else ())
    if full is not None:
        full.__cause__ = exc
        return full
    return exc


def exit_code(exc: BaseException) -> int:
    return int(getattr(exc, "exit_code", 2))


def stopped(exc: BaseException, cfg=None) -> str:
    """The line printed when a signal stops a job."""
    name = exc.args[0] if isinstance(exc, Terminated) else "SIGINT (Ctrl-C)"
    run_id = getattr(exc, "losslab_run_id", None)
    if not run_id:
        return f"stopped by {name} before its MLflow run started; nothing was recorded"
    folder = ""
    with contextlib.suppress(Exception):
        folder = f"; its checkpoints stay in {cfg.trainer.output_dir}"
    return (f"stopped by {name}: MLflow run {run_id} is KILLED{folder}; run the same command again to resume "
            "from the last checkpoint")
