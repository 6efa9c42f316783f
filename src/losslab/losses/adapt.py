"""Turn whatever ``_target_`` a loss config names into a correct ``compute_loss_func``, or refuse it.

- losslab losses and callables with the Trainer's signature ``(outputs, labels, num_items_in_batch)``
  are used as they are (they normalize by ``num_items_in_batch`` themselves);
- a module with a ``reduction`` attribute (every ``torch.nn`` loss: ``nn.MSELoss()``, ``nn.CrossEntropyLoss()``,
  ...) is switched to ``reduction="sum"`` and divided by ``num_items_in_batch``: exact under accumulation;
- a callable ``(logits, labels) -> batch mean`` with no ``reduction`` (most tutorials' losses) is correct
  only without gradient accumulation and on one process; otherwise it is refused, never silently run with
  gradients k times too large.
"""

from __future__ import annotations

import inspect

import torch

from losslab.errors import UsageError
from losslab.losses.base import IGNORE_INDEX, REGRESSION, logits_of, normalize


def takes_num_items(fn) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "num_items_in_batch" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _pair(logits, labels, kind):
    if kind == REGRESSION and logits.dim() == labels.dim() + 1 and logits.size(-1) == 1:
        return logits.squeeze(-1).float(), labels.float()
    return logits, labels


def _count(labels) -> torch.Tensor:
    return (labels != IGNORE_INDEX).sum()


class SumReduced(torch.nn.Module):
    """A ``torch.nn``-style loss set to ``reduction="sum"`` and divided by ``num_items_in_batch``."""

    def __init__(self, module: torch.nn.Module, kind: str):
        super().__init__()
        module.reduction = "sum"
        self.module, self.kind = module, kind
        self.task_kinds = getattr(module, "task_kinds", None)

    def forward(self, outputs, labels, num_items_in_batch=None):
        logits, target = _pair(logits_of(outputs), labels, self.kind)
        if logits.dim() == 3 and target.dim() == 2 and not target.is_floating_point():  # per-token classes
            logits, target = logits.reshape(-1, logits.size(-1)), target.reshape(-1)
        return normalize(self.module(logits, target), _count(target), num_items_in_batch)


class BatchMean(torch.nn.Module):
    """A ``(logits, labels) -> mean`` callable; correct only at one micro-batch per step on one process."""

    def __init__(self, fn, kind: str):
        super().__init__()
        self.fn, self.kind = fn, kind

    def forward(self, outputs, labels, num_items_in_batch=None):
        return self.fn(*_pair(logits_of(outputs), labels, self.kind))


class LevelsFromDistribution(torch.nn.Module):
    """Feeds a loss that takes class ids from a task whose labels are distributions over C ordered levels.

    The class id is the level of the distribution's mean (rounded half up); the Trainer counted C label
    elements per item, so ``num_items_in_batch / C`` items are handed on. ``task=rating_dist``: the rounded
    mean rating for ``cross_entropy`` and ``coral``, the raters' distribution itself for ``soft_cross_entropy``.
    """

    def __init__(self, loss, num_levels: int):
        super().__init__()
        self.loss, self.num_levels = loss, num_levels
        for name in ("predictions", "attach"):
            if hasattr(loss, name):
                setattr(self, name, getattr(loss, name))

    @staticmethod
    def levels(labels: torch.Tensor) -> torch.Tensor:
        t = labels.float()
        mean = (t * torch.arange(t.size(-1), device=t.device)).sum(-1)
        return torch.floor(mean + 0.5).long()

    def forward(self, outputs, labels, num_items_in_batch=None):
        n = None if num_items_in_batch is None else num_items_in_batch / self.num_levels
        return self.loss(outputs, self.levels(labels), num_items_in_batch=n)


def as_compute_loss_func(loss, kind: str, accumulation_steps: int = 1, world_size: int = 1, name: str = "loss"):
    """The callable to hand the Trainer as ``compute_loss_func`` (None: the model computes its own loss)."""
    if getattr(loss, "uses_model_loss", False):
        return None
    target = loss.forward if isinstance(loss, torch.nn.Module) else loss
    if takes_num_items(target):
        return loss
    if isinstance(getattr(loss, "reduction", None), str):
        return SumReduced(loss, kind)
    if accumulation_steps > 1 or world_size > 1:
        raise UsageError(
            f"loss={name} ({type(loss).__name__}) takes (logits, labels) and returns a batch mean, with no "
            f"`reduction` argument to switch to a sum. With gradient_accumulation_steps={accumulation_steps} on "
            f"{world_size} process(es) its gradients would be {accumulation_steps * world_size}x too large. "
            "Give it the Trainer's signature (outputs, labels, num_items_in_batch) and return "
            "sum(per-item loss) / num_items_in_batch, or a `reduction` attribute losslab can set to 'sum'."
        )
    return BatchMean(loss, kind)
