"""A one-node Slurm for real (Debian ``slurm-wlm`` + ``munge``), started by the test in a temp dir: a 2-job
sweep through ``hydra/launcher=slurm`` lands whole under one parent run, and a 2-task job is one DDP job
(one child run, both ranks in one checkpoint). The daemons listen on 127.0.0.1 and are stopped by their ids."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import run_train, runs
from services import free_port, need, stop_pid, wait_for

pytestmark = pytest.mark.slow

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "sinfo")


def _munge_answers() -> bool:
    if not shutil.which("munge") or not shutil.which("unmunge"):
        return False
    cred = subprocess.run(["munge", "-n"], capture_output=True, timeout=10)
    return cred.returncode == 0 and subprocess.run(["unmunge"], input=cred.stdout, capture_output=True,
                                                   timeout=10).returncode == 0


def _start_munge(tmp: Path) -> int | None:
    """munged as the munge user with its default socket (what Slurm's auth/munge talks to); None when one
    already answers (left alone)."""
    if _munge_answers():
        return None
    run_dir = Path("/run/munge")
    run_dir.mkdir(parents=True, exist_ok=True)
    munge = pwd.getpwnam("munge")
    os.chown(run_dir, munge.pw_uid, munge.pw_gid)
    pid_file = run_dir / "losslab-test-munged.pid"
    subprocess.run(["runuser", "-u", "munge", "--", "munged", f"--pid-file={pid_file}",
                    f"--log-file={run_dir / 'losslab-test-munged.log'}"], check=True, timeout=30)
    wait_for(_munge_answers, 15, "munged")
    return int(pid_file.read_text().split()[0])


def _slurm_conf(tmp: Path) -> Path:
    host = socket.gethostname()
    mem_mb = max(1024, int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20) // 2)
    cpus = len(os.sched_getaffinity(0))
    for d in ("state", "spool", "log"):
        (tmp / d).mkdir(parents=True, exist_ok=True)
    conf = tmp / "slurm.conf"
    conf.write_text(f"""ClusterName=losslabtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
CommunicationParameters=NoInAddrAny
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={tmp}/state
SlurmdSpoolDir={tmp}/spool
SlurmctldPidFile={tmp}/slurmctld.pid
SlurmdPidFile={tmp}/slurmd.pid
SlurmctldLogFile={tmp}/log/slurmctld.log
SlurmdLogFile={tmp}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
""")
    (tmp / "cgroup.conf").write_text("CgroupPlugin=cgroup/v1\nIgnoreSystemd=yes\n")
    return conf


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A running one-node Slurm: yields the environment (SLURM_CONF) that sbatch/sinfo need."""
    missing = [d for d in DAEMONS if not shutil.which(d)]
    need(not missing, f"Slurm/munge not installed ({', '.join(missing)} missing; Debian: apt-get install "
                      "slurm-wlm munge; make test installs them as root)")
    need(os.geteuid() == 0, "starting slurmd/munged needs root")
    tmp = tmp_path_factory.mktemp("slurm")
    conf = _slurm_conf(tmp)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    started: list[int] = []
    try:
        munged = _start_munge(tmp)
        if munged:
            started.append(munged)
        for daemon in ("slurmctld", "slurmd"):
            subprocess.run([daemon, "-c"], env=env, check=True, timeout=30)
            started.append(wait_for(lambda d=daemon: int((tmp / f"{d}.pid").read_text().split()[0]), 15,
                                    f"{daemon}'s pid file"))

        def idle():
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True,
                                   timeout=10).stdout.strip()
            return state == "idle"

        wait_for(idle, 30, "the Slurm node")
        yield env
    except Exception as exc:
        logs = "\n".join(p.read_text()[-1500:] for p in (tmp / "log").glob("*.log"))
        pytest.fail(f"one-node Slurm did not start: {exc}\n{logs}")
    finally:
        for pid in reversed(started):
            stop_pid(pid)


SLURM = ["hydra/launcher=slurm", "hydra.launcher.partition=debug", "hydra.launcher.mem_gb=1",
         "hydra.launcher.cpus_per_task=1", "hydra.launcher.timeout_min=10", "hardware=cpu"]


def _slurm_run(args, out: Path, env: dict) -> subprocess.CompletedProcess:
    saved = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = env["SLURM_CONF"]
    try:
        return run_train(args, out, timeout=400)
    finally:
        if saved is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = saved


def test_sweep_on_slurm_lands_whole(slurm, tmp_path):
    started = time.time()
    res = _slurm_run(["-m", *SLURM, "debug=quick", "loss=mse,mae"], tmp_path, slurm)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    every = runs(tmp_path)
    parents = [r for r in every if "losslab.sweep_hash" in r.data.tags]
    children = [r for r in every if r not in parents]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(r.data.tags["choice.loss"] for r in children) == ["mae", "mse"]
    assert all(r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id for r in children)
    assert all(r.info.status == "FINISHED" for r in children)
    print(f"2-job Slurm sweep: {time.time() - started:.0f} s")


def test_two_task_slurm_job_is_one_ddp_job(slurm, tmp_path):
    started = time.time()
    res = _slurm_run(["-m", *SLURM, "debug=quick", "loss=mse", "hydra.launcher.tasks_per_node=2",
                      "trainer.per_device_train_batch_size=4"], tmp_path, slurm)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    every = runs(tmp_path)
    children = [r for r in every if "losslab.sweep_hash" not in r.data.tags]
    assert len(children) == 1, [(r.info.run_name, r.info.status) for r in children]  # one job, not two
    (child,) = children
    assert child.info.status == "FINISHED"
    ckpt = list(Path(child.data.tags["losslab.checkpoint_dir"]).glob("checkpoint-*"))
    assert ckpt and {p.name for p in ckpt[-1].glob("rng_state_*.pth")} == {"rng_state_0.pth", "rng_state_1.pth"}
    print(f"2-task DDP job on Slurm: {time.time() - started:.0f} s")


def test_parent_run_ends_when_submission_fails(slurm, tmp_path):
    """Asking for more memory than the node has: sbatch refuses, and the sweep's parent run is not left RUNNING."""
    res = _slurm_run(["-m", *SLURM, "debug=quick", "loss=mse", "hydra.launcher.mem_gb=100000"], tmp_path, slurm)
    assert res.returncode != 0
    (parent,) = runs(tmp_path)
    assert parent.info.status == "FAILED"
    assert "launcher failed" in parent.data.tags.get("error", "")
