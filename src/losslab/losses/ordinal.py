"""Ordinal regression losses: K ordered levels (ratings), K − 1 logits, integer level labels 0..K−1."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from losslab.kinds import IGNORE_INDEX, ORDINAL
from losslab.losses.base import Loss


class Coral(Loss):
    """CORAL: K − 1 binary tasks "level > k", each a binary cross-entropy, summed per item.

    Rank consistency (Cao et al.) also needs a head with one shared weight vector and K − 1 biases;
    with a plain K − 1-output head this is the ordinal-binary-decomposition loss it builds on.
    Predicted level = number of tasks with σ(z_k) > 0.5.
    """

    task_kinds = (ORDINAL,)
    formula = "−Σ_k [ [y > k] log σ(z_k) + [y ≤ k] log(1 − σ(z_k)) ]"
    paper = "Cao, Mirjalili & Raschka, Pattern Recognition Letters 2020"
    reference = "NumPy closed form"

    def sum_and_count(self, logits, labels):
        z = logits.reshape(-1, logits.size(-1)).float()
        y = labels.reshape(-1).to(z.device)
        keep = y != IGNORE_INDEX
        levels = torch.arange(z.size(-1), device=z.device)
        t = (y[keep].unsqueeze(1) > levels).float()
        return F.binary_cross_entropy_with_logits(z[keep], t, reduction="sum"), keep.sum()

    @staticmethod
    def head_width(num_labels: int) -> int:
        """K ordered levels need K − 1 binary tasks."""
        return num_labels - 1

    @staticmethod
    def predictions(logits: torch.Tensor, labels=None) -> torch.Tensor:
        """Log-probabilities of the K levels, P(y = k) = P(y > k − 1) − P(y > k), clipped and renormalized
        (a plain head is not always rank-consistent), so classification metrics apply unchanged. Their
        argmax is the predicted level; ``levels`` gives the count-of-tasks prediction of the paper."""
        p_gt = torch.sigmoid(logits.float())
        ones = torch.ones_like(p_gt[..., :1])
        cumulative = torch.cat([ones, p_gt, torch.zeros_like(ones)], dim=-1)
        probs = (cumulative[..., :-1] - cumulative[..., 1:]).clamp_min(1e-12)
        return torch.log(probs / probs.sum(-1, keepdim=True))

    @staticmethod
    def levels(logits: torch.Tensor) -> torch.Tensor:
        """The paper's predicted level: the number of tasks with σ(z_k) > 0.5."""
        return (torch.sigmoid(logits) > 0.5).sum(-1)
