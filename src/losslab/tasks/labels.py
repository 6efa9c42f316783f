"""Task label transforms: a task's labels turned into what a loss takes."""

from __future__ import annotations

import torch


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
