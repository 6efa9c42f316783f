"""DDP for real: ``torchrun --nproc_per_node 2`` on the CPU (gloo) against one process with the same global
batch. One job is one job: the same logged loss (dropout off), exactly one MLflow run on a fresh store, one
output dir, one summary; ``-m`` under torchrun is refused with the recipe for a sweep of DDP jobs."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import PYTHONPATH, ROOT, TESTS, run_train, runs
from services import free_port, need

pytestmark = pytest.mark.slow

# 2 ranks x 4 = 1 process x 8 items per step; dropout off so both compute the same function
DDP = [
    "model=tiny", "hardware=cpu", "task=regression", "loss=mse", "seed=3",
    "+model.architecture.hidden_dropout_prob=0.0", "+model.architecture.attention_probs_dropout_prob=0.0",
    "trainer.train_sampling_strategy=random", "trainer.max_steps=4", "trainer.logging_steps=1",
    "trainer.eval_steps=4", "trainer.save_steps=4", "task.max_train_samples=64", "task.max_eval_samples=32",
]


def torchrun(args: list[str], out: Path, nproc: int = 2, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": PYTHONPATH, "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": "1"}
    for key in ("LOSSLAB_PARENT_RUN_ID", "RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_addr",
         "127.0.0.1", "--master_port", str(free_port()), str(ROOT / "train.py"), *args, f"paths.output_dir={out}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )


def loss_history(out: Path) -> list[float]:
    from mlflow.tracking import MlflowClient

    (run,) = runs(out)
    client = MlflowClient(f"sqlite:///{out}/mlflow.db")
    return [m.value for m in sorted(client.get_metric_history(run.info.run_id, "loss"), key=lambda m: m.step)]


def test_torchrun_two_cpu_ranks_are_one_job(tmp_path):
    need(importlib.util.find_spec("torch.distributed.run") is not None, "torch has no torch.distributed.run")
    import torch.distributed as dist

    need(dist.is_available() and dist.is_gloo_available(), "this torch build has no gloo backend")
    started = time.time()
    ddp = torchrun([*DDP, "trainer.per_device_train_batch_size=4"], tmp_path / "ddp")
    ddp_s = time.time() - started
    assert ddp.returncode == 0, ddp.stderr[-4000:]
    one = run_train([*DDP, "trainer.per_device_train_batch_size=8"], tmp_path / "one")
    assert one.returncode == 0, one.stderr[-4000:]

    (run,) = runs(tmp_path / "ddp")  # exactly one MLflow run: rank 1 tracks nothing
    assert run.info.status == "FINISHED"
    assert "test_pearson" in run.data.metrics
    assert ddp.stdout.count("losslab · task=regression") == 1  # one summary
    dirs = [p for p in (tmp_path / "ddp" / "runs").glob("*/*") if p.is_dir()]
    assert len(dirs) == 1, dirs  # one output dir: rank 1 writes into rank 0's
    assert run.data.tags["losslab.job_dir"] == str(dirs[0])
    ckpt = list((dirs[0] / "checkpoints").glob("checkpoint-*"))
    assert len(ckpt) == 1 and {p.name for p in ckpt[0].glob("rng_state_*.pth")} == {"rng_state_0.pth",
                                                                                 "rng_state_1.pth"}
    # the same logged loss: 2 ranks x 4 items and 1 process x 8 items give one gradient per step
    ddp_loss, one_loss = loss_history(tmp_path / "ddp"), loss_history(tmp_path / "one")
    assert len(ddp_loss) == len(one_loss) == 4
    assert ddp_loss == pytest.approx(one_loss, rel=1e-5, abs=1e-6)
    print(f"torchrun 2 ranks: {ddp_s:.0f} s; losses {ddp_loss}")


def test_sweep_under_torchrun_is_refused(tmp_path):
    need(importlib.util.find_spec("torch.distributed.run") is not None, "torch has no torch.distributed.run")
    res = torchrun(["-m", "loss=mse,mae", "model=tiny"], tmp_path, timeout=120)
    assert res.returncode != 0
    assert "cannot run under torchrun" in res.stderr and "tasks_per_node=N" in res.stderr
    assert runs(tmp_path) == [] and not (tmp_path / "multiruns").exists()
