"""Helpers for the tests that start real services (torchrun, Slurm, PostgreSQL, an MLflow server).

Each such test skips with a reason where it cannot run, and fails instead under ``CI=true``, where it should
run (``make test`` installs what they need). Every process a test starts is stopped by its id; servers listen
on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import pytest


def need(ok: bool, reason: str) -> None:
    """Skip with ``reason`` unless ``ok``; under ``CI=true`` a missing prerequisite is a failure."""
    if ok:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and this test cannot run: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen | None, grace: float = 10.0) -> None:
    """Stop a process this test started, by its id: SIGTERM, then SIGKILL after ``grace`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def stop_pid(pid: int, grace: float = 10.0) -> None:
    """Stop a daemon this test started (it forked: known by the pid file it wrote)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    end = time.time() + grace
    while time.time() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_for(check, timeout: float, what: str, interval: float = 0.3):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s (last: {last!r})")
