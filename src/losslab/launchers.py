"""What losslab knows of Hydra's launchers: the CPU cores a job gets (joblib's ``n_jobs``, submitit's
``cpus_per_task``) and the GPUs a Slurm job asks for."""

from __future__ import annotations

import os


def cpus_per_job() -> int | None:
    """The CPU cores each job of this sweep may use: submitit's ``cpus_per_task``, or the machine's cores shared
    out between the jobs joblib runs at once (``n_jobs``), so that parallel jobs do not oversubscribe the CPU.
    None: one job at a time, or outside Hydra (all cores)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    launcher = HydraConfig.get().launcher
    if launcher.get("cpus_per_task"):  # submitit: the CPUs each job was given
        return int(launcher.cpus_per_task)
    n_jobs = launcher.get("n_jobs")
    if not n_jobs or n_jobs == 1:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    parallel = cores if n_jobs < 0 else min(int(n_jobs), cores)
    return max(1, cores // parallel)


def slurm_gpus(device, tasks_per_node):
    """``hydra/launcher=slurm``'s ``gpus_per_node``: one GPU per task with ``hardware=gpu`` (device cuda), else
    none (null: no ``--gpus-per-node``, so a cluster without GPUs accepts the job)."""
    return int(tasks_per_node or 1) if str(device) == "cuda" else None
