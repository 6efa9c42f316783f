"""Regression losses: the head predicts one number per example (``gaussian_nll``: a mean and a variance)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from losslab.kinds import REGRESSION
from losslab.losses.base import Loss


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
    """Mean squared error."""

    task_kinds = (REGRESSION,)
    formula = "(y − ŷ)²"
    reference = "NumPy closed form"

    def sum_and_count(self, logits, labels):
        pred, target = align(logits, labels)
        return F.mse_loss(pred, target, reduction="sum"), target.numel()


class MAE(Loss):
    """Mean absolute error: robust to outlying targets."""

    task_kinds = (REGRESSION,)
    formula = "|y − ŷ|"
    reference = "NumPy closed form"

    def sum_and_count(self, logits, labels):
        pred, target = align(logits, labels)
        return F.l1_loss(pred, target, reduction="sum"), target.numel()


class Huber(Loss):
    """Huber: quadratic near zero, linear in the tails."""

    task_kinds = (REGRESSION,)
    formula = "½e² if |e| ≤ δ else δ(|e| − ½δ)"
    paper = "Huber 1964"
    reference = "NumPy closed form; = δ · smooth_l1(β = δ)"

    def __init__(self, delta: float = 1.0):
        super().__init__()
        if delta <= 0:
            raise ValueError(f"huber: delta must be > 0, got {delta}")
        self.delta = float(delta)

    def sum_and_count(self, logits, labels):
        pred, target = align(logits, labels)
        return F.huber_loss(pred, target, reduction="sum", delta=self.delta), target.numel()


class SmoothL1(Loss):
    """Smooth L1: Huber divided by its threshold (torch's and Fast R-CNN's form)."""

    task_kinds = (REGRESSION,)
    formula = "½e²/β if |e| < β else |e| − ½β"
    paper = "Girshick, ICCV 2015"
    reference = "NumPy closed form"

    def __init__(self, beta: float = 1.0):
        super().__init__()
        if beta < 0:
            raise ValueError(f"smooth_l1: beta must be >= 0, got {beta}")
        self.beta = float(beta)

    def sum_and_count(self, logits, labels):
        pred, target = align(logits, labels)
        return F.smooth_l1_loss(pred, target, reduction="sum", beta=self.beta), target.numel()


class LogCosh(Loss):
    """log(cosh(e)) in the overflow-safe form e + softplus(−2e) − log 2 (finite at |e| = 100 in fp32)."""

    task_kinds = (REGRESSION,)
    formula = "log cosh(y − ŷ) = e + softplus(−2e) − log 2"
    reference = "NumPy np.log(np.cosh(e)) in float64"

    def sum_and_count(self, logits, labels):
        pred, target = align(logits, labels)
        e = pred - target
        return (e + F.softplus(-2.0 * e) - math.log(2.0)).sum(), target.numel()


class Quantile(Loss):
    """Pinball loss: trains the head to predict the q-th quantile of the target (q = 0.5: the median)."""

    task_kinds = (REGRESSION,)
    formula = "max(q·e, (q − 1)·e), e = y − ŷ"
    paper = "Koenker & Bassett, Econometrica 1978"
    reference = "sklearn.metrics.mean_pinball_loss"

    def __init__(self, q: float = 0.5):
        super().__init__()
        if not 0.0 < q < 1.0:
            raise ValueError(f"quantile: q must be in (0, 1), got {q}")
        self.q = float(q)

    def sum_and_count(self, logits, labels):
        pred, target = align(logits, labels)
        e = target - pred
        return torch.maximum(self.q * e, (self.q - 1.0) * e).sum(), target.numel()


class GaussianNLL(Loss):
    """Heteroscedastic Gaussian NLL: the head predicts a mean and a variance (softplus of its 2nd output)."""

    task_kinds = (REGRESSION,)
    formula = "½(log max(σ², ε) + (y − μ)² / max(σ², ε)), σ² = softplus(head₂)"
    paper = "Nix & Weigend, ICNN 1994"
    reference = "torch.nn.functional.gaussian_nll_loss"
    @staticmethod
    def head_width(num_labels: int) -> int:
        """The head needs two outputs per target: mean and (raw) variance."""
        return 2 * num_labels

    def __init__(self, eps: float = 1e-6, full: bool = False):
        super().__init__()
        self.eps = float(eps)
        self.full = bool(full)

    @staticmethod
    def predictions(logits: torch.Tensor, labels=None) -> torch.Tensor:
        """The point prediction for the metric suite: the predicted mean."""
        return logits[..., 0]

    def sum_and_count(self, logits, labels):
        if logits.size(-1) != 2:
            raise ValueError(f"gaussian_nll: the head must give (mean, variance) per item, got {tuple(logits.shape)}")
        mean, target = align(logits[..., :1], labels)
        var = F.softplus(logits[..., 1].float())
        total = F.gaussian_nll_loss(mean, target, var, full=self.full, eps=self.eps, reduction="sum")
        return total, target.numel()
