"""Regression losses: the head predicts one number per example (or one per target)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from losslab.losses.base import REGRESSION, Loss


def align(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions and targets of the same shape, in fp32.

    A regression head gives ``(batch, 1)`` while labels are ``(batch,)``: subtracting them as they are
    broadcasts to ``(batch, batch)``, a silent and common bug. Squeeze the label dimension, then insist.
    """
    pred = logits.squeeze(-1) if logits.dim() == labels.dim() + 1 and logits.size(-1) == 1 else logits
    if pred.shape != labels.shape:
        raise ValueError(
            f"regression loss: predictions of shape {tuple(logits.shape)} do not match labels of shape "
            f"{tuple(labels.shape)} (expected (batch, 1) or (batch,) for one target per example)"
        )
    return pred.float(), labels.to(device=pred.device, dtype=torch.float32)


class MSE(Loss):
    """Mean squared error: (y - ŷ)²."""

    task_kinds = (REGRESSION,)

    def sum_and_count(self, logits, labels):
        pred, target = align(logits, labels)
        return F.mse_loss(pred, target, reduction="sum"), target.numel()


class MAE(Loss):
    """Mean absolute error: |y - ŷ|."""

    task_kinds = (REGRESSION,)

    def sum_and_count(self, logits, labels):
        pred, target = align(logits, labels)
        return F.l1_loss(pred, target, reduction="sum"), target.numel()


class Huber(Loss):
    """Huber: ½e² for |e| <= delta, delta·(|e| - ½delta) beyond (quadratic near zero, linear in the tails)."""

    task_kinds = (REGRESSION,)

    def __init__(self, delta: float = 1.0):
        super().__init__()
        if delta <= 0:
            raise ValueError(f"huber: delta must be > 0, got {delta}")
        self.delta = float(delta)

    def sum_and_count(self, logits, labels):
        pred, target = align(logits, labels)
        return F.huber_loss(pred, target, reduction="sum", delta=self.delta), target.numel()
