"""``hardware=cpu|gpu|auto``: the device and precision, turned into ``TrainingArguments`` fields."""

from __future__ import annotations

import os

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def training_kwargs(hw) -> dict:
    """``use_cpu``/``bf16``/``fp16``/``dataloader_num_workers`` for the hardware config; refuses what is absent."""
    import torch

    from losslab.preflight import ConfigError

    if hw.device not in DEVICES:
        raise ConfigError(f"hardware.device={hw.device!r}; choose one of: {', '.join(DEVICES)}")
    if hw.precision not in PRECISIONS:
        raise ConfigError(f"hardware.precision={hw.precision!r}; choose one of: {', '.join(PRECISIONS)}")
    cuda = torch.cuda.is_available()
    if hw.device == "cuda" and not cuda:
        raise ConfigError("hardware=gpu asks for a CUDA GPU, but torch sees none (torch.cuda.is_available() "
                          "is False); use hardware=cpu or hardware=auto")
    on_gpu = cuda and hw.device != "cpu"
    precision = hw.precision
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if on_gpu else "fp32"
    if precision in ("bf16", "fp16") and not on_gpu:
        raise ConfigError(f"hardware.precision={precision} needs a CUDA GPU; use fp32 on the CPU")
    return {
        "use_cpu": not on_gpu,
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        "dataloader_num_workers": int(hw.dataloader_num_workers),
    }


def cpu_threads(hw) -> int | None:
    """Torch's intra-op threads for this job: ``hardware.threads``, or, with no setting, the machine's cores
    shared out between the jobs a parallel launcher runs at once (joblib's ``n_jobs``; submitit's
    ``cpus_per_task``), so that parallel jobs do not oversubscribe the CPU. None: torch's default (all cores)."""
    if hw.get("threads"):
        return int(hw.threads)
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


def set_threads(hw) -> None:
    """Apply :func:`cpu_threads` to torch (nothing when it says None)."""
    threads = cpu_threads(hw)
    if threads:
        import torch

        torch.set_num_threads(threads)
