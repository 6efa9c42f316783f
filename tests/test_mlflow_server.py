"""A shared MLflow tracking server for real: PostgreSQL (a throwaway cluster made with initdb/pg_ctl as the
postgres user, on 127.0.0.1) behind ``mlflow server`` with ``--artifacts-destination``, as a session-scoped
fixture. ``tracking=server``: a parallel sweep lands whole, its artifacts on the server; a job finds its
parent run through the sweep dir; a server that does not answer is one line within seconds."""

from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import compose, run_train
from services import free_port, need, wait_for

pytestmark = pytest.mark.slow


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _as_postgres(*cmd, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "postgres", "--", *cmd], capture_output=True, text=True,
                          timeout=timeout, cwd="/")


@pytest.fixture(scope="session")
def mlflow_server():
    """``http://127.0.0.1:<port>`` of an MLflow server on a fresh PostgreSQL database; its artifacts folder."""
    tools = {n: _pg_bin(n) for n in ("initdb", "pg_ctl", "createdb")}
    need(all(tools.values()), "PostgreSQL server binaries not found (Debian: apt-get install postgresql; "
                              "make test installs it as root)")
    need(os.geteuid() == 0, "the throwaway PostgreSQL cluster is run as the postgres user: needs root")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        need(False, "no postgres user (Debian's postgresql package makes it)")
    need(importlib.util.find_spec("psycopg2") is not None, "psycopg2 not installed (pip install psycopg2-binary)")
    tmp = Path(tempfile.mkdtemp(prefix="losslab-pg-"))
    pg = pwd.getpwnam("postgres")
    os.chown(tmp, pg.pw_uid, pg.pw_gid)
    data, pg_port, port = tmp / "data", free_port(), free_port()
    artifacts = Path(tempfile.mkdtemp(prefix="losslab-mlartifacts-"))
    server = None
    pg_started = False
    try:
        out = _as_postgres(tools["initdb"], "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        assert out.returncode == 0, out.stderr
        out = _as_postgres(tools["pg_ctl"], "-D", str(data), "-l", str(tmp / "pg.log"), "-w", "-o",
                           f"-k {tmp} -h 127.0.0.1 -p {pg_port} -c fsync=off", "start")
        assert out.returncode == 0, out.stderr + (tmp / "pg.log").read_text()
        pg_started = True
        out = _as_postgres(tools["createdb"], "-h", "127.0.0.1", "-p", str(pg_port), "-U", "postgres", "mlflow")
        assert out.returncode == 0, out.stderr
        log = open(tmp / "mlflow.log", "w")
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
             f"postgresql+psycopg2://postgres@127.0.0.1:{pg_port}/mlflow", "--artifacts-destination", str(artifacts),
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,  # its workers: one process group
        )
        uri = f"http://127.0.0.1:{port}"

        def healthy():
            assert server.poll() is None, (tmp / "mlflow.log").read_text()[-3000:]
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as r:
                return r.status == 200

        wait_for(healthy, 120, "mlflow server")
        yield uri, artifacts
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # the server we started and its own workers, by its id
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(5)
        if pg_started:
            _as_postgres(tools["pg_ctl"], "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(artifacts, ignore_errors=True)


def test_parallel_sweep_lands_whole_on_the_server(mlflow_server, tmp_path):
    from mlflow.tracking import MlflowClient

    uri, artifacts = mlflow_server
    started = time.time()
    res = run_train(["-m", "tracking=server", f"tracking.uri={uri}", "hydra/launcher=joblib",
                     "hydra.launcher.n_jobs=2", "debug=quick", "loss=mse,mae"], tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("losslab")
    every = client.search_runs([exp.experiment_id], max_results=100)
    parents = [r for r in every if "losslab.sweep_hash" in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    children = [r for r in every if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert sorted(r.data.tags["choice.loss"] for r in children) == ["mae", "mse"]
    assert all(r.info.status == "FINISHED" and "test_pearson" in r.data.metrics for r in children)
    # artifacts went through the server into its --artifacts-destination, none into a local folder
    assert exp.artifact_location.startswith("mlflow-artifacts:")
    for run in children:
        names = {a.path for a in client.list_artifacts(run.info.run_id, "predictions")}
        assert "predictions/test.parquet" in names
        assert list(artifacts.rglob(f"{run.info.run_id}/artifacts/predictions/test.parquet"))
    assert not (tmp_path / "mlartifacts").exists()
    assert list(artifacts.rglob("report/report.md"))  # the sweep's report, on the parent run
    print(f"2-job joblib sweep against mlflow server on PostgreSQL: {time.time() - started:.0f} s")


def test_job_finds_parent_run_in_sweep_dir(tmp_path, monkeypatch):
    """On a machine the launching process's environment did not reach, the sweep dir names the parent."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import open_dict

    from losslab import cluster, tracking
    from losslab.report import sweep as report

    assert cluster.PARENT_FILE == report.PARENT_FILE
    monkeypatch.delenv(cluster.PARENT_RUN_ENV, raising=False)
    (tmp_path / "3").mkdir()
    (tmp_path / report.PARENT_FILE).write_text("http://db:5000\nabc123\n")
    cfg = compose(["-m" if False else "seed=1"], hydra=True)
    with open_dict(cfg):
        cfg.hydra.mode = RunMode.MULTIRUN
        cfg.hydra.runtime.output_dir = str(tmp_path / "3")
    HydraConfig.instance().set_config(cfg)
    try:
        assert cluster.parent_run_id("http://db:5000") == "abc123"
        assert cluster.parent_run_id("http://other:5000") is None  # another store's sweep: not ours
        monkeypatch.setenv(cluster.PARENT_RUN_ENV, "fromenv")
        assert cluster.parent_run_id("http://db:5000") == "fromenv"
    finally:
        HydraConfig.instance().cfg = None


def test_unreachable_server_is_one_line_in_seconds(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    for sweep in ([], ["-m"]):
        started = time.time()
        res = run_train([*sweep, "tracking=server", f"tracking.uri={dead}", "debug=quick"], tmp_path, timeout=120)
        took = time.time() - started
        assert res.returncode == 2, res.stderr[-2000:]
        errors = [line for line in res.stderr.splitlines() if line.strip()]
        assert len(errors) == 1 and "no MLflow server answers there" in errors[0], res.stderr[-2000:]
        assert "Traceback" not in res.stderr
        assert took < 60, took
