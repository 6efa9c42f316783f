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


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


class _StoreWatch:
    """The sqlite file a run writes to, as it was when the run started."""

    def __init__(self, uri: str, run_id: str | None):
        from losslab.paths import sqlite_path

        self.path = sqlite_path(str(uri))
        self.run_id = run_id
        self.id = _file_id(self.path) if self.path is not None else None
        self.gone = False

    def changed(self) -> bool:
        if self.path is None or self.id is None:
            return False
        self.gone = self.gone or _file_id(self.path) != self.id
        return self.gone


_WATCH: list[_StoreWatch] = []


class _QuietWhenGone:
    """A filter on MLflow's log handler: once the store is gone, each write that fails on it (in the training
    loop or MLflow's background logging thread) logs no traceback; :func:`check_store` says it once."""

    def filter(self, record) -> bool:
        return not (_WATCH and record.levelno >= 30 and _WATCH[-1].changed())


@contextlib.contextmanager
def watching_store(uri: str, run_id: str | None = None):
    """While a run is written: :func:`check_store` (before each MLflow write of the Trainer) raises a
    :class:`StoreError` if the sqlite store was deleted or replaced, and MLflow's own tracebacks for the
    writes that fail on it are left out."""
    import logging

    watch = _StoreWatch(uri, run_id)
    quiet = _QuietWhenGone()
    handlers = logging.getLogger("mlflow").handlers
    _WATCH.append(watch)
    for handler in handlers:
        handler.addFilter(quiet)
    try:
        yield watch
    finally:
        if not watch.gone:  # gone: MLflow still tries to write at exit (its async queue, end_run)
            _WATCH.remove(watch)
            for handler in handlers:
                handler.removeFilter(quiet)


def check_store() -> None:
    """Raise a :class:`StoreError` if the sqlite store the current run writes to was deleted or replaced."""
    if not _WATCH or not _WATCH[-1].changed():
        return
    watch = _WATCH[-1]
    what = "deleted" if not watch.path.exists() else "replaced by another file"
    run = f"MLflow run {watch.run_id}" if watch.run_id else "the run"
    raise StoreError(f"the MLflow store {watch.path} was {what} while the job ran: {run} cannot be written any "
                     "more and the job is stopped; restore the store, or run the same command again to start "
                     "over in a new one")


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


_STOPPED_BY: list[str] = []  # the signals that stopped a job in this process (a sweep's parent run says so)


def stopped_by() -> str | None:
    """The signal that stopped a job in this process (``SIGTERM``, ``SIGINT (Ctrl-C)``), or None."""
    return _STOPPED_BY[-1] if _STOPPED_BY else None


def stopped(exc: BaseException, cfg=None) -> str:
    """The line printed when a signal stops a job (the signal is remembered: :func:`stopped_by`)."""
    name = exc.args[0] if isinstance(exc, Terminated) else "SIGINT (Ctrl-C)"
    _STOPPED_BY.append(name)
    run_id = getattr(exc, "losslab_run_id", None)
    if not run_id:
        return f"stopped by {name} before its MLflow run started; nothing was recorded"
    folder = ""
    with contextlib.suppress(Exception):
        folder = f"; its checkpoints stay in {cfg.trainer.output_dir}"
    return (f"stopped by {name}: MLflow run {run_id} is KILLED{folder}; run the same command again to resume "
            "from the last checkpoint")
