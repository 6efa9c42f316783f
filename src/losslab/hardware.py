"""``hardware=cpu|gpu|auto``: the device and precision, turned into ``TrainingArguments`` fields."""

from __future__ import annotations

from losslab.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def cpu_bf16() -> bool:
    """Whether this CPU runs bf16 matmuls natively (oneDNN: AVX512-BF16 or AMX), so autocast to bf16 pays."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        return False


def precision(hw) -> tuple[bool, str]:
    """``(on_gpu, precision)`` for the hardware config, ``auto`` resolved; refuses what is absent.

    ``auto``: bf16 autocast on a GPU that supports it (else fp16), bf16 autocast on a CPU that runs bf16
    natively (else fp32). The weights, the optimizer, the losses and the metrics stay in fp32 either way.
    """
    import torch

    if hw.device not in DEVICES:
        raise ConfigError(f"hardware.device={hw.device!r}; choose one of: {', '.join(DEVICES)}")
    if hw.precision not in PRECISIONS:
        raise ConfigError(f"hardware.precision={hw.precision!r}; choose one of: {', '.join(PRECISIONS)}")
    cuda = torch.cuda.is_available()
    if hw.device == "cuda" and not cuda:
        raise ConfigError("hardware=gpu asks for a CUDA GPU, but torch sees none (torch.cuda.is_available() "
                          "is False); use hardware=cpu or hardware=auto")
    on_gpu = cuda and hw.device != "cpu"
    chosen = hw.precision
    if chosen == "auto":
        if on_gpu:
            chosen = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            chosen = "bf16" if cpu_bf16() else "fp32"
    if not on_gpu and chosen == "fp16":
        raise ConfigError("hardware.precision=fp16 needs a CUDA GPU; on the CPU use bf16 (where the CPU has it) "
                          "or fp32")
    if not on_gpu and chosen == "bf16" and not cpu_bf16():
        raise ConfigError("hardware.precision=bf16: this CPU has no native bf16 (no AVX512-BF16/AMX; "
                          "torch.ops.mkldnn._is_mkldnn_bf16_supported() is False); use hardware.precision=fp32")
    return on_gpu, chosen


def training_kwargs(hw) -> dict:
    """``use_cpu``/``bf16``/``fp16``/``dataloader_num_workers`` for the hardware config."""
    on_gpu, chosen = precision(hw)
    return {
        "use_cpu": not on_gpu,
        "bf16": chosen == "bf16",
        "fp16": chosen == "fp16",
        "dataloader_num_workers": int(hw.dataloader_num_workers),
    }


def cpu_threads(hw) -> int | None:
    """Torch's intra-op threads for this job: ``hardware.threads``, or, with no setting, the cores a parallel
    launcher gives each job (:func:`losslab.launchers.cpus_per_job`). None: torch's default (all cores)."""
    from losslab.launchers import cpus_per_job

    return int(hw.threads) if hw.get("threads") else cpus_per_job()


def set_threads(hw) -> None:
    """Apply :func:`cpu_threads` to torch (nothing when it says None)."""
    threads = cpu_threads(hw)
    if threads:
        import torch

        torch.set_num_threads(threads)
