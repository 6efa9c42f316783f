"""The loss contract: every losslab loss is a ``compute_loss_func`` for the Hugging Face Trainer.

``loss(outputs, labels, num_items_in_batch=None)`` returns ``sum(per-item loss) / num_items_in_batch``.
The Trainer counts ``num_items_in_batch`` over every micro-batch of an optimizer step (and over every rank),
so gradient accumulation and data parallelism give the gradient of one large batch. Only when it is None
(evaluation) is the divisor the local item count: the plain mean. A subclass writes one method,
:meth:`Loss.sum_and_count`, and never divides by anything itself (fairseq's criterion contract).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import nn

# Problem kinds of a task. A task declares one; a loss declares the ones it serves.
REGRESSION = "regression"
SINGLE_LABEL = "single_label"
TASK_KINDS = (REGRESSION, SINGLE_LABEL)
IGNORE_INDEX = -100


def logits_of(outputs) -> torch.Tensor:
    """The logits of a model output (a ModelOutput, a dict or a tuple whose first item is the logits)."""
    if isinstance(outputs, Mapping):
        return outputs["logits"]
    if isinstance(outputs, (tuple, list)):
        return outputs[0]
    return outputs


def normalize(total: torch.Tensor, count: torch.Tensor | int, num_items_in_batch=None) -> torch.Tensor:
    """``total / num_items_in_batch``, or ``total / count`` when the Trainer gave no count.

    A divisor of zero (every label ignored) gives a zero loss with a zero gradient, never NaN.
    """
    denom = count if num_items_in_batch is None else num_items_in_batch
    if not torch.is_tensor(denom):
        denom = torch.tensor(denom, dtype=total.dtype, device=total.device)
    return total / denom.to(device=total.device, dtype=total.dtype).clamp_min(1)


class Loss(nn.Module):
    """Base class of losslab's losses. Subclasses set ``task_kinds`` and implement ``sum_and_count``."""

    task_kinds: ClassVar[tuple[str, ...]] = ()

    def sum_and_count(self, logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The summed per-item loss of this micro-batch and the number of items it covers."""
        raise NotImplementedError

    def forward(self, outputs, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
        total, count = self.sum_and_count(logits_of(outputs), labels)
        return normalize(total, count, num_items_in_batch)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in vars(self).items() if not k.startswith("_") and k != "training")
