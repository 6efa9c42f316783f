"""losslab.locks, across real processes: a held lock is never taken (its holder named from the file), a lock
of a process killed with SIGKILL is free, a process reuses its own lock and its probe never releases it, and a
store lock held past the wait is refused naming what waited."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from conftest import PYTHONPATH
from losslab import locks

HOLD = """
import sys, time
from losslab import locks
assert locks.try_lock(sys.argv[1], note=sys.argv[2]) is not None
print("held", flush=True)
time.sleep(120)
"""


@pytest.fixture
def other_process():
    started = []

    def hold(path, note="pid 0 on elsewhere"):
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), note], stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": PYTHONPATH})
        started.append(proc)
        assert proc.stdout.readline().strip() == "held"
        return proc

    yield hold
    for proc in started:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def test_a_lock_held_elsewhere_is_refused_and_named_until_its_process_is_killed(tmp_path, other_process):
    path = locks.job_lock_path(tmp_path / "run" / "checkpoints")
    proc = other_process(path, "pid 4242 on node7")
    try:
        assert locks.try_lock(path) is None
        assert locks.holder(path) == "pid 4242 on node7"  # a refused try leaves the holder's note whole
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert locks.holder(path) is None  # the kernel dropped it with its process
        lock = locks.try_lock(path)
        assert lock is not None and path.read_text() == locks.this_process()
    finally:
        locks.release_all()


def test_a_process_reuses_its_own_lock_and_its_probe_never_releases_it(tmp_path, other_process):
    path = tmp_path / "a.lock"
    try:
        lock = locks.try_lock(path)
        assert lock is not None and locks.try_lock(path) is lock
        assert locks.holder(path) is None  # this process's own lock: nobody else
        assert locks.holder(path) is None and locks.try_lock(path) is lock
        lock.release()
        other_process(path)
        assert locks.try_lock(path) is None and locks.holder(path) == "pid 0 on elsewhere"
    finally:
        locks.release_all()


def test_release_all_frees_every_lock_of_this_process(tmp_path, other_process):
    paths = [tmp_path / "a.lock", tmp_path / "b" / "c.lock"]
    assert all(locks.try_lock(p) is not None for p in paths)
    locks.release_all()
    other_process(paths[1])
    assert locks.try_lock(paths[0]) is not None and locks.try_lock(paths[1]) is None
    locks.release_all()


def test_a_store_lock_held_past_the_wait_raises_naming_what_waited(tmp_path, other_process):
    path = tmp_path / "mlflow.db.lock"
    with locks.waiting(path, 1, "the MLflow store"):  # free: taken at once, and released after the block
        pass
    proc = other_process(path)
    with pytest.raises(TimeoutError, match=r"the MLflow store: still locked by another process after 1 s"):
        with locks.waiting(path, 1, "the MLflow store"):
            pytest.fail("entered a held lock")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    with locks.waiting(path, 1, "the MLflow store"):
        assert locks.try_lock(tmp_path / "other.lock") is not None
    locks.release_all()
