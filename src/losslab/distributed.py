"""One job, several processes (DDP): ``torchrun --nproc_per_node N train.py ...`` or a submitit/Slurm job
with ``tasks_per_node=N``. The Trainer does the data-parallel training; this module makes the job *one* job:

- only rank 0 tracks: it looks up earlier attempts, starts, logs to and ends the MLflow run, writes the summary;
  the other ranks never touch the store (so a fresh sqlite store is created once, by rank 0);
- every rank writes into rank 0's output dir (each process resolves ``${now:}`` itself, hydra#2070): the
  other ranks get no Hydra run dir of their own (:func:`hydra_overrides`) and take rank 0's checkpoint dir
  and resume decision through :func:`from_main`, which is also the barrier after rank 0's store look-up;
- a sweep (``-m``) under torchrun would run whole on every rank: it is refused (:func:`refuse_sweep`). A sweep
  of DDP jobs puts the sweep outside and DDP inside each job: ``hydra/launcher=slurm
  hydra.launcher.tasks_per_node=N`` (each task a rank, the torch.distributed environment exported by
  :func:`init` through submitit).
"""

from __future__ import annotations

import os
import sys

SWEEP_UNDER_TORCHRUN = (
    "losslab: error: a sweep (-m, or a preset that sweeps) cannot run under torchrun: every rank would run the "
    "whole sweep. Put the sweep outside and DDP inside each job: python train.py -m hydra/launcher=slurm "
    "hydra.launcher.tasks_per_node=N ... (each job N processes, one DDP job; add hardware=gpu for one GPU per "
    "process), or run torchrun --nproc_per_node N train.py ... once per job, without -m."
)


def world_size() -> int:
    """torchrun's ``WORLD_SIZE`` (exported by :func:`export_submitit_env` in a submitit job). Read from the
    environment, not from ``torch.distributed.get_world_size()`` or ``PartialState().num_processes`` (the same
    number once the group exists): train.py asks before Hydra composes, before any group, without torch."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """torchrun's ``RANK``: see :func:`world_size`."""
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """Whether this process tracks (rank 0, or the only process)."""
    return rank() == 0


def _slurm_tasks() -> int:
    """The tasks of a submitit job (Slurm or local) this process is one of; 1 outside such a job (a plain
    ``python train.py`` in an ``salloc -n 4`` shell is one process, whatever SLURM_NTASKS says)."""
    if not os.environ.get("SUBMITIT_EXECUTOR"):
        return 1
    try:
        from submitit import JobEnvironment

        return int(JobEnvironment().num_tasks)
    except Exception:  # not inside a submitit job (e.g. an interactive shell on a Slurm node)
        return 1


def export_submitit_env() -> None:
    """In a submitit job with several tasks, export the torch.distributed environment (RANK, WORLD_SIZE,
    LOCAL_RANK, MASTER_ADDR, MASTER_PORT) so that the tasks are the ranks of one DDP job instead of N copies of
    it. Each process keeps every GPU visible (the Trainer picks ``cuda:LOCAL_RANK``); a one-node job meets on
    127.0.0.1."""
    if "RANK" in os.environ or _slurm_tasks() < 2:
        return
    from submitit.helpers import TorchDistributedEnvironment

    env = TorchDistributedEnvironment()
    env.export(set_cuda_visible_devices=False)
    if len(set(env._job_env.hostnames)) == 1:
        os.environ["MASTER_ADDR"] = "127.0.0.1"


def init(hw) -> None:
    """Start the process group of a multi-process job (no-op for one process) through the Trainer's own
    ``accelerate.PartialState`` (``cpu`` as the Trainer's ``use_cpu``): NCCL on GPUs (``cuda:LOCAL_RANK``),
    gloo on the CPU. The Trainer then reuses the group."""
    export_submitit_env()
    if world_size() < 2:
        return
    from accelerate import PartialState

    from losslab import hardware

    on_gpu, _ = hardware.precision(hw)
    PartialState(cpu=not on_gpu)


def from_main(value):
    """Rank 0's ``value`` on every rank (a pickled broadcast, and a barrier); ``value`` itself alone."""
    if world_size() < 2:
        return value
    import torch.distributed as dist

    box = [value if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class NoRun:
    """What a rank other than 0 holds instead of an MLflow run."""

    class info:  # noqa: N801  (mirrors mlflow.entities.Run.info)
        run_id = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def hydra_overrides(argv: list[str]) -> list[str]:
    """Extra command-line overrides for a rank other than 0 under torchrun: no Hydra run dir, ``.hydra/`` or
    log file of its own (rank 0's dir is the job's, and the Trainer's checkpoint dir comes from rank 0)."""
    if is_main() or world_size() < 2:
        return []
    given = {a.split("=", 1)[0].lstrip("+~") for a in argv if "=" in a}
    wanted = {"hydra.run.dir": ".", "hydra.output_subdir": "null", "hydra/job_logging": "stdout"}
    return [f"{k}={v}" for k, v in wanted.items() if k not in given]


def refuse_sweep() -> None:
    """Exit with one line when a sweep is started under torchrun (every rank would run all of it).

    Only rank 0 fails (exit 2, after the line); the other ranks leave quietly with 0. Were they to fail too,
    torchrun's agent would stop the job at the first failure it sees, and when a rank > 0 got there first, it
    killed rank 0 before it printed the line (seen in CI)."""
    if world_size() > 1:
        if is_main():
            print(SWEEP_UNDER_TORCHRUN, file=sys.stderr, flush=True)
            sys.exit(2)
        sys.exit(0)
