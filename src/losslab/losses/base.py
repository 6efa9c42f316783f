"""The loss contract: every losslab loss is a ``compute_loss_func`` for the Hugging Face Trainer.

``loss(outputs, labels, num_items_in_batch=None)`` returns ``sum(per-item loss) / num_items_in_batch``.
The Trainer counts ``num_items_in_batch`` over every micro-batch of an optimizer step (and over every rank):
label elements that are not -100. So gradient accumulation and data parallelism give the gradient of one
large batch. Only when it is None (evaluation) is the divisor the local item count: the plain mean.

A subclass writes one method, :meth:`Loss.sum_and_count`, returning the summed per-item loss, the number of
items it covers and, optionally, named components (summed the same way: ``{"ce": ..., "z": ...}``); the base
class does every division (fairseq's criterion contract). Components are normalized exactly like the total
and kept, detached, in ``last_components`` for the logs; the loss itself never knows about any logger.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import nn


def logits_of(outputs) -> torch.Tensor:
    """The logits of a model output (a ModelOutput, a dict or a tuple whose first item is the logits)."""
    if isinstance(outputs, Mapping):
        return outputs["logits"]
    if isinstance(outputs, (tuple, list)):
        return outputs[0]
    return outputs


def normalize(total: torch.Tensor, count, num_items_in_batch=None, per_count: float = 1.0) -> torch.Tensor:
    """``total / num_items_in_batch`` (or ``total / count`` when the Trainer gave no count).

    ``per_count`` converts the Trainer's count into this loss's items: a soft-label loss over C classes sees
    C label elements per example, so it divides by ``num_items_in_batch / C``. A divisor of zero (every label
    ignored) gives a zero loss with a zero gradient, never NaN.
    """
    if num_items_in_batch is None:
        denom = count
    else:
        denom = num_items_in_batch / per_count if per_count != 1.0 else num_items_in_batch
    if not torch.is_tensor(denom):
        denom = torch.tensor(denom, dtype=total.dtype, device=total.device)
    return total / denom.to(device=total.device, dtype=total.dtype).clamp_min(1)


class Loss(nn.Module):
    """Base class of losslab's losses. Subclasses set ``task_kinds`` and implement ``sum_and_count``."""

    task_kinds: ClassVar[tuple[str, ...]] = ()
    #: formula of one item, for docs/losses.md
    formula: ClassVar[str] = ""
    #: paper, for docs/losses.md
    paper: ClassVar[str] = ""
    #: what the tests check it against, for docs/losses.md
    reference: ClassVar[str] = ""

    def __init__(self) -> None:
        super().__init__()
        self.last_components: dict[str, torch.Tensor] = {}

    def sum_and_count(self, logits: torch.Tensor, labels: torch.Tensor):
        """``(summed loss, item count)`` or ``(summed loss, item count, {component: summed value})``."""
        raise NotImplementedError

    def label_elements_per_item(self, logits: torch.Tensor, labels: torch.Tensor) -> float:
        """How many of the Trainer's counted label elements make one item of this loss (1 for most)."""
        return 1.0

    def forward(self, outputs, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
        logits = logits_of(outputs)
        got = self.sum_and_count(logits, labels)
        total, count = got[0], got[1]
        per = self.label_elements_per_item(logits, labels)
        loss = normalize(total, count, num_items_in_batch, per)
        if len(got) > 2:
            self.last_components = {
                name: normalize(value, count, num_items_in_batch, per).detach() for name, value in got[2].items()
            }
        return loss

    def extra_repr(self) -> str:
        shown = {k: v for k, v in vars(self).items() if not k.startswith("_") and k not in ("training", "last_components")}
        return ", ".join(f"{k}={v}" for k, v in shown.items())


def weights_option(value, what: str):
    """A per-class (or per-label) weight option: None, ``"balanced"`` (fitted on the training split later),
    or a list of floats."""
    if value is None or value == "balanced":
        return value
    if isinstance(value, str):
        raise ValueError(f"{what} must be a list of floats or 'balanced', got {value!r}")
    return [float(w) for w in value]


def class_weights_balanced(counts) -> list[float]:
    """sklearn's 'balanced' weights: n_items / (n_classes * count_c); a class never seen gets weight 0."""
    counts = [float(c) for c in counts]
    n, k = sum(counts), len(counts)
    return [n / (k * c) if c > 0 else 0.0 for c in counts]
