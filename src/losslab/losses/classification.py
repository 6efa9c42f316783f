"""Single-label classification losses: the head gives one logit per class; labels are class ids."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from losslab.losses.base import IGNORE_INDEX, SINGLE_LABEL, Loss


def flatten(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``(items, classes)`` in fp32 and integer labels ``(items,)``; -100 marks an ignored item."""
    if logits.dim() < 2:
        raise ValueError(f"classification loss: logits need a class dimension, got shape {tuple(logits.shape)}")
    if labels.is_floating_point():
        raise ValueError(
            "cross_entropy takes integer class ids; got float labels "
            f"(dtype {labels.dtype}). For one-hot or soft targets use a soft-label loss."
        )
    flat_labels = labels.reshape(-1).to(logits.device)
    flat_logits = logits.reshape(-1, logits.size(-1)).float()
    if flat_logits.size(0) != flat_labels.size(0):
        raise ValueError(
            f"classification loss: {flat_logits.size(0)} rows of logits {tuple(logits.shape)} "
            f"for {flat_labels.size(0)} labels {tuple(labels.shape)}"
        )
    return flat_logits, flat_labels


class CrossEntropy(Loss):
    """Cross-entropy with integer ("sparse") labels: -log softmax(z)[y]; items labelled -100 are ignored."""

    task_kinds = (SINGLE_LABEL,)

    def sum_and_count(self, logits, labels):
        z, y = flatten(logits, labels)
        total = F.cross_entropy(z, y, ignore_index=IGNORE_INDEX, reduction="sum")
        return total, (y != IGNORE_INDEX).sum()
