"""``hardware=cpu|gpu|auto``: the device and precision, turned into ``TrainingArguments`` fields."""

from __future__ import annotations

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
