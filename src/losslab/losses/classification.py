"""Single-label classification losses: one logit per class; labels are class ids, -100 ignored.

They flatten ``(..., classes)`` logits against ``(...)`` labels, so the same classes serve token
classification: every real token is an item, padding and sub-word positions (-100) are not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F

from losslab.kinds import IGNORE_INDEX, SINGLE_LABEL, TOKEN
from losslab.losses.base import Loss, class_weights_balanced, weights_option

KINDS = (SINGLE_LABEL, TOKEN)


def flatten(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``(items, classes)`` in fp32 and integer labels ``(items,)``; -100 marks an ignored item."""
    if logits.dim() < 2:
        raise ValueError(f"classification loss: logits need a class dimension, got shape {tuple(logits.shape)}")
    if labels.is_floating_point():
        raise ValueError(
            "this loss takes integer class ids; got float labels "
            f"(dtype {labels.dtype}). For one-hot or soft targets use loss=soft_cross_entropy."
        )
    flat_labels = labels.reshape(-1).to(logits.device)
    flat_logits = logits.reshape(-1, logits.size(-1)).float()
    if flat_logits.size(0) != flat_labels.size(0):
        raise ValueError(
            f"classification loss: {flat_logits.size(0)} rows of logits {tuple(logits.shape)} "
            f"for {flat_labels.size(0)} labels {tuple(labels.shape)}"
        )
    return flat_logits, flat_labels


def true_class_log_prob(z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``log p_y`` of the kept items (from log_softmax: no log(0)) and the mask of kept items."""
    keep = y != IGNORE_INDEX
    logp = F.log_softmax(z[keep], dim=-1)
    return logp.gather(1, y[keep].unsqueeze(1)).squeeze(1), keep


class CrossEntropy(Loss):
    """Cross-entropy on integer ("sparse") labels."""

    task_kinds = KINDS
    formula = "−log softmax(z)_y"
    reference = "NumPy log-softmax; torch.nn.functional.cross_entropy"

    def sum_and_count(self, logits, labels):
        z, y = flatten(logits, labels)
        total = F.cross_entropy(z, y, ignore_index=IGNORE_INDEX, reduction="sum")
        return total, (y != IGNORE_INDEX).sum()


class LabelSmoothing(Loss):
    """Cross-entropy against (1 − ε)·one-hot + ε/C; padding (-100) is ignored, not smoothed."""

    task_kinds = KINDS
    formula = "(1 − ε)(−log p_y) + ε · mean_c(−log p_c)"
    paper = "Szegedy et al., CVPR 2016"
    reference = "torch cross_entropy(label_smoothing=ε, ignore_index=-100); NumPy closed form"

    def __init__(self, epsilon: float = 0.1):
        super().__init__()
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"label_smoothing: epsilon must be in [0, 1], got {epsilon}")
        self.epsilon = float(epsilon)

    def sum_and_count(self, logits, labels):
        z, y = flatten(logits, labels)
        total = F.cross_entropy(z, y, ignore_index=IGNORE_INDEX, label_smoothing=self.epsilon, reduction="sum")
        return total, (y != IGNORE_INDEX).sum()


class SoftCrossEntropy(Loss):
    """Cross-entropy against a target distribution per item (Keras' "categorical" cross-entropy).

    Labels are either a float distribution shaped like the logits (soft or one-hot; a row of -100 is
    padding) or integer class ids, taken as one-hot (then it equals ``cross_entropy``).
    """

    task_kinds = KINDS
    takes_distributions = True
    formula = "−Σ_c t_c log softmax(z)_c"
    reference = "torch cross_entropy with probability targets; NumPy closed form"

    def label_elements_per_item(self, logits, labels):
        # The Trainer counts every element of a (batch, C) float target: C label elements per item.
        return float(labels.size(-1)) if labels.is_floating_point() else 1.0

    def sum_and_count(self, logits, labels):
        if not labels.is_floating_point():
            z, y = flatten(logits, labels)
            keep = y != IGNORE_INDEX
            t = F.one_hot(y[keep], z.size(-1)).float()
            return -(t * F.log_softmax(z[keep], dim=-1)).sum(), keep.sum()
        if labels.shape != logits.shape:
            raise ValueError(
                f"soft_cross_entropy: a target distribution must be shaped like the logits {tuple(logits.shape)}, "
                f"got {tuple(labels.shape)}"
            )
        z = logits.reshape(-1, logits.size(-1)).float()
        t = labels.reshape(-1, labels.size(-1)).float().to(z.device)
        keep = (t >= 0).all(-1)  # an item whose targets are -100 is padding
        per_item = -(t[keep] * F.log_softmax(z[keep], dim=-1)).sum(-1)
        return per_item.sum(), keep.sum()


class _ClassWeighted(Loss):
    """Shared by losses whose ``weights`` may be a list or ``balanced`` (from the training split's counts)."""

    def __init__(self, weights: Sequence[float] | str | None = None):
        super().__init__()
        self.weights = weights_option(weights, "weights")

    @property
    def needs_train_labels(self) -> bool:
        return self.weights == "balanced"

    def fit(self, train_labels) -> dict[str, float]:
        """Compute ``balanced`` weights from the training split's class ids; return them for the logs."""
        import numpy as np

        rows = [np.ravel(r) for r in train_labels]  # class ids, or one list of ids per sequence (token tasks)
        y = np.concatenate(rows) if rows else np.zeros(0, dtype=int)
        y = y[y != IGNORE_INDEX].astype(int)
        self.weights = class_weights_balanced(np.bincount(y))
        return {f"class_weight.{c}": w for c, w in enumerate(self.weights)}

    def weight_tensor(self, z: torch.Tensor) -> torch.Tensor | None:
        if self.weights is None:
            return None
        if isinstance(self.weights, str):
            raise RuntimeError("weights='balanced' were never computed: call fit(train_labels) first")
        if len(self.weights) != z.size(-1):
            raise ValueError(f"{len(self.weights)} class weights for {z.size(-1)} classes")
        return torch.tensor(self.weights, dtype=z.dtype, device=z.device)


class WeightedCrossEntropy(_ClassWeighted):
    """Class-weighted cross-entropy for imbalanced classes, divided by the item count (not Σ weights).

    torch's ``cross_entropy(weight=w)`` mean divides by Σ w_y of the batch; that divisor changes from
    micro-batch to micro-batch and breaks gradient-accumulation invariance, so losslab divides by the number
    of items, as the Trainer counts them. With ``balanced`` weights the mean weight over the training set
    is 1, so the loss keeps the scale of plain cross-entropy.
    """

    task_kinds = KINDS
    formula = "−w_y log softmax(z)_y   (divided by the item count)"
    reference = "NumPy closed form; balanced weights = sklearn compute_class_weight"

    def sum_and_count(self, logits, labels):
        z, y = flatten(logits, labels)
        total = F.cross_entropy(z, y, weight=self.weight_tensor(z), ignore_index=IGNORE_INDEX, reduction="sum")
        return total, (y != IGNORE_INDEX).sum()


class Focal(_ClassWeighted):
    """Focal loss: cross-entropy down-weighted on easy, confident items; reports the plain CE as a component."""

    task_kinds = KINDS
    formula = "−α_y (1 − p_y)^γ log p_y"
    paper = "Lin et al., ICCV 2017"
    reference = "NumPy closed form (float64)"

    def __init__(self, gamma: float = 2.0, alpha: float | Sequence[float] | str | None = None):
        scalar = alpha is None or isinstance(alpha, (int, float))
        super().__init__(None if scalar else alpha)
        if gamma < 0:
            raise ValueError(f"focal: gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)
        self.alpha = float(alpha) if scalar and alpha is not None else None

    def sum_and_count(self, logits, labels):
        z, y = flatten(logits, labels)
        logp_y, keep = true_class_log_prob(z, y)
        # (1 - p)^gamma from log p: expm1 keeps it accurate near p = 1, the clamp keeps gamma < 1 finite there
        # (the true gradient at a saturated item is ~0, which is what the clamp gives).
        modulator = (-torch.expm1(logp_y)).clamp_min(1e-12) ** self.gamma
        per_item = -modulator * logp_y
        w = self.weight_tensor(z)
        if w is not None:
            per_item = per_item * w[y[keep]]
        if self.alpha is not None:
            per_item = per_item * self.alpha
        return per_item.sum(), keep.sum(), {"ce": -logp_y.sum()}


class Poly1(Loss):
    """PolyLoss (Poly-1): cross-entropy plus ε times the first polynomial term (1 − p_y)."""

    task_kinds = KINDS
    formula = "−log p_y + ε(1 − p_y)"
    paper = "Leng et al., ICLR 2022"
    reference = "NumPy closed form"

    def __init__(self, epsilon: float = 1.0):
        super().__init__()
        self.epsilon = float(epsilon)

    def sum_and_count(self, logits, labels):
        z, y = flatten(logits, labels)
        logp_y, keep = true_class_log_prob(z, y)
        return (-logp_y + self.epsilon * (-torch.expm1(logp_y))).sum(), keep.sum()


class MultiMargin(_ClassWeighted):
    """Multi-class hinge, Weston–Watkins as torch's ``MultiMarginLoss``: every wrong class that comes within
    the margin of the true one adds to the loss, the sum divided by C; p=1 hinge, p=2 squared hinge.
    ``loss=hinge`` is the Crammer–Singer form (only the best wrong class counts)."""

    task_kinds = KINDS
    formula = "Σ_{c≠y} max(0, m − z_y + z_c)^p / C"
    paper = "Weston & Watkins, ESANN 1999"
    reference = "torch.nn.functional.multi_margin_loss; NumPy closed form"

    def __init__(self, p: int = 1, margin: float = 1.0, weights: Sequence[float] | str | None = None):
        super().__init__(weights)
        if p not in (1, 2):
            raise ValueError(f"multi_margin: p must be 1 or 2, got {p}")
        self.p = int(p)
        self.margin = float(margin)

    def sum_and_count(self, logits, labels):
        z, y = flatten(logits, labels)
        keep = y != IGNORE_INDEX
        if not keep.any():  # torch's multi_margin_loss on zero rows is NaN
            return z.sum() * 0.0, keep.sum()
        total = F.multi_margin_loss(z[keep], y[keep], p=self.p, margin=self.margin,
                                    weight=self.weight_tensor(z), reduction="sum")
        return total, keep.sum()


class Hinge(Loss):
    """Multi-class hinge, Crammer–Singer as scikit-learn's ``hinge_loss``: the true class's logit must beat the
    best wrong class by the margin.

    With two classes it is the binary hinge ``max(0, m − t·f)`` of the decision ``f = z₁ − z₀``, ``t = ±1``
    (Keras' ``hinge`` on one logit). Compared with ``multi_margin`` (Weston–Watkins, a sum over every wrong
    class divided by C) only the closest wrong class is penalized, and the value is not divided by C.
    """

    task_kinds = KINDS
    power: ClassVar[int] = 1
    formula = "max(0, m − z_y + max_{c≠y} z_c)"
    paper = "Crammer & Singer, JMLR 2001"
    reference = "sklearn.metrics.hinge_loss (binary on z₁ − z₀, and multi-class); NumPy closed form"

    def __init__(self, margin: float = 1.0):
        super().__init__()
        if margin < 0:
            raise ValueError(f"hinge: margin must be >= 0, got {margin}")
        self.margin = float(margin)

    def sum_and_count(self, logits, labels):
        z, y = flatten(logits, labels)
        keep = y != IGNORE_INDEX
        zk, yk = z[keep], y[keep]
        is_true = F.one_hot(yk, z.size(-1)).bool()
        true = zk.masked_select(is_true)
        best_wrong = zk.masked_fill(is_true, float("-inf")).amax(-1)
        per_item = (self.margin - true + best_wrong).clamp_min(0) ** self.power
        return per_item.sum(), keep.sum()


class SquaredHinge(Hinge):
    """Squared multi-class hinge (Crammer–Singer): ``hinge`` squared per item, a smooth penalty (the L2-SVM loss;
    Keras' ``squared_hinge`` for two classes)."""

    power = 2
    formula = "max(0, m − z_y + max_{c≠y} z_c)²"
    paper = "Crammer & Singer, JMLR 2001; squared: the L2-SVM loss"
    reference = "sklearn.metrics.hinge_loss per item, squared; NumPy closed form"


class Dice(Loss):
    """Self-adjusting dice loss for imbalanced classification, per item over the one-hot target.

    With alpha = 1 every term depends on p through (1 − p)·p, whose slope vanishes at p = 0.5: a fresh binary
    head (p ≈ 0.5 everywhere) gets almost no gradient at first. Measured on the tiny BERT, one SGD step on 16
    sentiment rows: largest parameter change 7.8e-6 against 0.126 for cross-entropy (~16,000× smaller).
    Lower alpha, or add cross-entropy through ``composite``.
    """

    task_kinds = KINDS
    formula = "mean_c [1 − (2(1 − p_c)^α p_c t_c + γ) / ((1 − p_c)^α p_c + t_c + γ)]"
    paper = "Li et al., ACL 2020 (Dice Loss for Data-imbalanced NLP Tasks)"
    reference = "NumPy closed form"

    def __init__(self, alpha: float = 1.0, gamma: float = 1.0):
        super().__init__()
        self.alpha = float(alpha)
        self.gamma = float(gamma)

    def sum_and_count(self, logits, labels):
        z, y = flatten(logits, labels)
        keep = y != IGNORE_INDEX
        p = F.softmax(z[keep], dim=-1)
        t = F.one_hot(y[keep], z.size(-1)).float()
        pw = (1.0 - p) ** self.alpha * p
        dsc = 1.0 - (2.0 * pw * t + self.gamma) / (pw + t + self.gamma)
        return dsc.mean(-1).sum(), keep.sum()


class Square(Loss):
    """Square loss for classification (Hui & Belkin, ICLR 2021): the logits regressed onto one-hot targets, no
    softmax, with the paper's rescaling for many classes.

    Per item, over C classes with true class y::

        (1/C) · [ k · (z_y − M)² + Σ_{c≠y} z_c² ]

    ``M`` is the value of the one-hot target's 1 and ``k`` weights the true class's term. With ``k = M = 1``
    (the defaults) it is the plain mean squared error between the logits and the one-hot vector, i.e.
    ``torch.nn.functional.mse_loss(z, one_hot(y))`` (mean over items and classes): the paper's loss for data
    sets with few classes, which covers all of its NLP tasks (BERT fine-tuning on GLUE included) and every
    classification task that ships with losslab (2 to 21 classes). The paper rescales only for its data sets
    with many classes (42 and more) and sets k and M per data set, not by a formula in C: k = 1, M = 15 for
    its speech tasks with ~40–50 classes (TIMIT, WSJ), k = 15, M = 30 for 1000 classes (Librispeech,
    ImageNet). losslab does not pick them from C: set ``loss.k`` / ``loss.M`` yourself for such a task.

    The 1/C keeps the paper's (and torch's mean) scale; it makes the loss, and its gradient, C times smaller
    than the sum over classes, which matters for the learning rate, not for the optimum. Accuracy and
    macro-F1 compare cleanly with cross-entropy; the metric suite's log loss and ECE read softmax(z) as
    probabilities, which this loss never trained (its logits aim at 0 and M), so do not compare those.
    """

    task_kinds = KINDS
    formula = "(1/C)[k(z_y − M)² + Σ_{c≠y} z_c²]   (no softmax)"
    paper = "Hui & Belkin, ICLR 2021"
    reference = "torch.nn.functional.mse_loss on one-hot targets (k = M = 1); NumPy closed form (k, M)"

    def __init__(self, k: float = 1.0, M: float = 1.0):  # noqa: N803 (the paper's names)
        super().__init__()
        if not k > 0:
            raise ValueError(f"square: k (the weight of the true class's term) must be > 0, got {k}")
        if not M > 0:
            raise ValueError(f"square: M (the one-hot target's value) must be > 0, got {M}")
        self.k = float(k)
        self.M = float(M)

    def sum_and_count(self, logits, labels):
        z, y = flatten(logits, labels)
        keep = y != IGNORE_INDEX
        zk = z[keep]
        is_true = F.one_hot(y[keep], z.size(-1)).bool()
        target = is_true.to(zk.dtype) * self.M
        weight = torch.where(is_true, self.k, 1.0).to(zk.dtype)
        per_item = (weight * (zk - target) ** 2).mean(-1)
        return per_item.sum(), keep.sum()
