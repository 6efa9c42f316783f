"""Multi-label classification losses: one logit per label, targets in {0, 1} (-100 ignores an element).

Items are label elements, as the Trainer counts them for float labels: batch × labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from losslab.kinds import IGNORE_INDEX, MULTI_LABEL
from losslab.losses.base import Loss, weights_option


def elements(logits: torch.Tensor, labels: torch.Tensor):
    """Kept logits and targets, flattened, in fp32, with the index of each element's label."""
    if labels.shape != logits.shape:
        raise ValueError(f"multi-label loss: labels {tuple(labels.shape)} must match logits {tuple(logits.shape)}")
    t = labels.to(logits.device).float()
    keep = t != IGNORE_INDEX
    label_index = torch.arange(logits.size(-1), device=logits.device).expand_as(logits)
    return logits.float()[keep], t[keep], label_index[keep]


class BCE(Loss):
    """Binary cross-entropy with logits per label; ``pos_weight`` up-weights the positives of rare labels."""

    task_kinds = (MULTI_LABEL,)
    formula = "−[w_l t log σ(z) + (1 − t) log(1 − σ(z))]"
    reference = "torch.nn.functional.binary_cross_entropy_with_logits"

    def __init__(self, pos_weight: Sequence[float] | str | None = None):
        super().__init__()
        self.pos_weight = weights_option(pos_weight, "bce: pos_weight")

    @property
    def needs_train_labels(self) -> bool:
        return self.pos_weight == "balanced"

    def fit(self, train_labels) -> dict[str, float]:
        """``balanced``: pos_weight_l = negatives_l / positives_l on the training split."""
        import numpy as np

        t = np.asarray(train_labels, dtype=float)
        pos = ((t == 1).sum(0)).astype(float)
        neg = ((t == 0).sum(0)).astype(float)
        self.pos_weight = [float(n / p) if p > 0 else 1.0 for n, p in zip(neg, pos)]
        return {f"pos_weight.{i}": w for i, w in enumerate(self.pos_weight)}

    def sum_and_count(self, logits, labels):
        z, t, idx = elements(logits, labels)
        pw = None
        if self.pos_weight is not None:
            if isinstance(self.pos_weight, str):
                raise RuntimeError("pos_weight='balanced' was never computed: call fit(train_labels) first")
            pw = torch.tensor(self.pos_weight, dtype=z.dtype, device=z.device)[idx]
        return F.binary_cross_entropy_with_logits(z, t, pos_weight=pw, reduction="sum"), t.numel()


class SigmoidFocal(Loss):
    """Focal loss per label with sigmoids (RetinaNet's form)."""

    task_kinds = (MULTI_LABEL,)
    formula = "α_t (1 − p_t)^γ · BCE(z, t),  p_t = σ(z) if t else 1 − σ(z)"
    paper = "Lin et al., ICCV 2017"
    reference = "NumPy closed form (torchvision.ops.sigmoid_focal_loss's formula)"

    def __init__(self, gamma: float = 2.0, alpha: float | None = 0.25):
        super().__init__()
        self.gamma = float(gamma)
        self.alpha = None if alpha is None else float(alpha)

    def sum_and_count(self, logits, labels):
        z, t, _ = elements(logits, labels)
        ce = F.binary_cross_entropy_with_logits(z, t, reduction="none")
        # 1 - p_t = exp(log(1 - p_t)) = exp(-ce): exact and finite when the prediction saturates
        loss = (-torch.expm1(-ce)).clamp_min(1e-12) ** self.gamma * ce
        if self.alpha is not None:
            loss = (self.alpha * t + (1 - self.alpha) * (1 - t)) * loss
        return loss.sum(), t.numel(), {"bce": ce.sum()}


class Asymmetric(Loss):
    """Asymmetric loss (ASL): focusing on positives and negatives apart, with a probability margin for negatives.

    The focusing weights ``(1 − p)^γ₊`` and ``p_m^γ₋`` are part of the graph by default
    (``detach_focal_weight=False``): the gradient of the paper's formula, as written. The authors' code
    (Alibaba-MIIL/ASL, ``src/loss_functions/losses.py``: ``AsymmetricLoss(..., disable_torch_grad_focal_loss=True)``,
    its default and what their ``train.py`` uses; ``AsymmetricLossOptimized`` defaults to False) computes the
    weights with gradients off: ``detach_focal_weight=True`` does the same, so the gradient is that of the log
    terms scaled by constant weights. The value of the loss is the same either way.
    """

    task_kinds = (MULTI_LABEL,)
    formula = "−t(1 − p)^γ₊ log p − (1 − t) p_m^γ₋ log(1 − p_m),  p_m = max(p − clip, 0)"
    paper = "Ridnik et al., ICCV 2021"
    reference = "NumPy closed form; detach_focal_weight: the weights computed under torch.no_grad()"

    def __init__(self, gamma_pos: float = 0.0, gamma_neg: float = 4.0, clip: float = 0.05,
                 detach_focal_weight: bool = False):
        super().__init__()
        self.gamma_pos, self.gamma_neg, self.clip = float(gamma_pos), float(gamma_neg), float(clip)
        self.detach_focal_weight = bool(detach_focal_weight)

    def sum_and_count(self, logits, labels):
        z, t, _ = elements(logits, labels)
        p = torch.sigmoid(z)
        log_p = F.logsigmoid(z)
        if self.clip > 0:
            p_m = (p - self.clip).clamp_min(0)
            log_1m = torch.log((1 - p + self.clip).clamp(max=1.0))
        else:
            p_m, log_1m = p, F.logsigmoid(-z)
        w_pos = (1 - p).clamp_min(1e-12) ** self.gamma_pos if self.gamma_pos else None
        w_neg = p_m ** self.gamma_neg if self.gamma_neg else None
        if self.detach_focal_weight:
            w_pos = None if w_pos is None else w_pos.detach()
            w_neg = None if w_neg is None else w_neg.detach()
        pos = log_p if w_pos is None else w_pos * log_p
        neg = log_1m if w_neg is None else w_neg * log_1m
        return -(t * pos + (1 - t) * neg).sum(), t.numel()
