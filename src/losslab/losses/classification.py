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
    """Shared by losses whose ``weights`` may be a list or ``balanced`` (from the training split's counts).

    ``balanced``: see :func:`losslab.losses.base.class_weights_balanced` (sklearn's weights over the classes
    present in training, mean 1 over the training items; an absent class gets the present classes' mean).
    """

    def __init__(self, weights: Sequence[float] | str | None = None):
        super().__init__()
        self.weights = weights_option(weights, "weights")
        self._absent_weight: float | None = None  # set by fit: the weight of a class training never showed

    @property
    def needs_train_labels(self) -> bool:
        return self.weights == "balanced"

    def fit(self, train_labels, num_classes: int | None = None) -> dict[str, float]:
        """Compute ``balanced`` weights from the training split's class ids; return them for the logs.

        ``num_classes`` is the task's class count (``task.num_labels``): with it, classes above the highest id
        seen in training get weights too. Without it, the weights cover ``0..max id seen``, and a forward pass
        whose logits have more columns gives each missing class the absent-class weight: the same weights
        ``num_classes`` would have given (a class with no training item does not change the others').
        """
        import numpy as np

        rows = [np.ravel(r) for r in train_labels]  # class ids, or one list of ids per sequence (token tasks)
        y = np.concatenate(rows) if rows else np.zeros(0, dtype=int)
        y = y[y != IGNORE_INDEX].astype(int)
        if (y < 0).any():
            raise ValueError(f"balanced class weights: negative class id {int(y.min())} in the training labels")
        counts = np.bincount(y, minlength=int(num_classes or 0))
        self.weights = class_weights_balanced(counts, num_classes)
        present = counts[: len(self.weights)] > 0
        w = np.asarray(self.weights)
        self._absent_weight = float(w[present].mean()) if present.any() else 1.0
        return {f"class_weight.{c}": w for c, w in enumerate(self.weights)}

    def weight_tensor(self, z: torch.Tensor) -> torch.Tensor | None:
        if self.weights is None:
            return None
        if isinstance(self.weights, str):
            raise RuntimeError("weights='balanced' were never computed: call fit(train_labels) first")
        weights = self.weights
        if self._absent_weight is not None and len(weights) < z.size(-1):  # fitted without num_classes
            weights = weights + [self._absent_weight] * (z.size(-1) - len(weights))
        if len(weights) != z.size(-1):
            raise ValueError(f"{len(weights)} class weights for {z.size(-1)} classes")
        return torch.tensor(weights, dtype=z.dtype, device=z.device)


class WeightedCrossEntropy(_ClassWeighted):
    """Class-weighted cross-entropy for imbalanced classes, divided by the item count (not Σ weights).

    torch's ``cross_entropy(weight=w)`` mean divides by Σ w_y of the batch; that divisor changes from
    micro-batch to micro-batch and breaks gradient-accumulation invariance, so losslab divides by the number
    of items, as the Trainer counts them. With ``balanced`` weights the mean weight over the training set
    is 1 (also when a class is absent from training: it gets the present classes' mean weight), so the loss
    keeps the scale of plain cross-entropy.
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

    # FLSD-53 (Mukhoti et al., NeurIPS 2020, "sample-dependent" focal loss): gamma 5 for an item whose p_y < 0.2,
    # else 3; the authors' code (torrvision/focal_calibration, FocalLossAdaptive(gamma=3)) picks it per item from
    # p_y as a constant (no gradient through the choice).
    SCHEDULES = ("flsd53",)

    def __init__(self, gamma: float | str = 2.0, alpha: float | Sequence[float] | str | None = None):
        scalar = alpha is None or isinstance(alpha, (int, float))
        super().__init__(None if scalar else alpha)
        if isinstance(gamma, str):
            if gamma not in self.SCHEDULES:
                raise ValueError(f"focal: gamma must be a number >= 0 or one of {', '.join(self.SCHEDULES)}, "
                                 f"got {gamma!r}")
            self.gamma = gamma
        elif gamma < 0:
            raise ValueError(f"focal: gamma must be >= 0, got {gamma}")
        else:
            self.gamma = float(gamma)
        self.alpha = float(alpha) if scalar and alpha is not None else None

    def gammas(self, logp_y: torch.Tensor) -> torch.Tensor | float:
        """The gamma of each item: the constant, or FLSD-53's 5 where p_y < 0.2, else 3 (no gradient)."""
        if not isinstance(self.gamma, str):
            return self.gamma
        low = logp_y.detach().exp() < 0.2
        return torch.where(low, torch.full_like(logp_y, 5.0), torch.full_like(logp_y, 3.0))

    def sum_and_count(self, logits, labels):
        z, y = flatten(logits, labels)
        logp_y, keep = true_class_log_prob(z, y)
        # (1 - p)^gamma from log p: expm1 keeps it accurate near p = 1, the clamp keeps gamma < 1 finite there
        # (the true gradient at a saturated item is ~0, which is what the clamp gives).
        modulator = (-torch.expm1(logp_y)).clamp_min(1e-12) ** self.gammas(logp_y)
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


def log_p_and_log_1m_p(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``log p_c`` and ``log(1 − p_c)`` of ``p = softmax(z)``, both finite, with finite gradients, at any margin.

    ``log(1 − p_c)`` is the log-sum-exp of the *other* classes' logits minus that of all the logits: no
    ``1 − p``, which rounds to 0 in fp32 once a softmax saturates (a margin of ~17), where ``(1 − p)^α`` with
    α < 1 has an infinite slope and its gradient turns NaN. ``z`` is ``(items, C)`` with ``C >= 2``; it builds
    an ``(items, C, C)`` tensor, fine for the few classes of a classification head.
    """
    eye = torch.eye(z.size(-1), dtype=torch.bool, device=z.device)
    others = z.unsqueeze(1).masked_fill(eye, float("-inf"))  # row c: the logits of every class but c
    lse = torch.logsumexp(z, dim=-1, keepdim=True)
    return z - lse, (torch.logsumexp(others, dim=-1) - lse).clamp_max(0.0)


DICE_ITEM_FORMULA = "mean_c [1 − (2(1 − p_c)^α p_c t_c + γ) / ((1 − p_c)^α p_c + t_c + γ)]"
DICE_BATCH_FORMULA = ("mean_c [1 − (2 Σ_i w_ic t_ic + γ) / (Σ_i w_ic² + Σ_i t_ic + γ)],  w = (1 − p)^α p, "
                      "Σ_i over a micro-batch's items; × its items / num_items_in_batch")


class Dice(Loss):
    """Self-adjusting dice loss for imbalanced classification (Li et al., ACL 2020), over the one-hot target.

    ``w_c = (1 − p_c)^α · p_c`` with ``p = softmax(z)``, ``t`` the one-hot target, ``γ`` the smoothing term
    (the authors' code calls it ``smooth``: ``Dice(smooth=...)`` is accepted as another name for ``gamma``).
    ``(1 − p)^α`` is computed as ``exp(α · log(1 − p))`` with ``log(1 − p)`` from the other classes' logits
    (:func:`log_p_and_log_1m_p`), so the loss and its gradient stay finite for every α > 0 at any margin
    (before, α < 1 gave a NaN gradient from a margin of 17 in fp32). It equals the naive formula wherever that
    one is accurate; in fp32 the naive value stays finite but is wrong once 1 − p rounds to 0 (0^α = 0
    instead of ~e^(−α·margin): at α = 0.01, margin 17, 1/6 instead of 0.0176 for the item).

    ``reduction="item"`` (the default; an item is a token for token tasks), per item::

        mean_c [1 − (2 w_c t_c + γ) / (D(w_c) + t_c + γ)],   D(w) = w  (or w² with square_denominator)

    With α = 1 it is not monotone in p: every term depends on p through (1 − p)·p, which is 0 both at p = 1
    and at p = 0, so a confident right tag and a confident wrong tag score the same (γ = 1: 1/(2C) per item,
    the true class's term 1/2, the others' 0), and the true class's term is lowest at p_y = 0.5. Its slope
    also vanishes at p = 0.5: a fresh binary head (p ≈ 0.5 everywhere) gets almost no gradient at first.
    Measured on the tiny BERT, one SGD step on 16 sentiment rows: largest parameter change 7.8e-6 against
    0.126 for cross-entropy (~16,000× smaller). Lower alpha, use the batch form, or add cross-entropy through
    ``composite``.

    ``reduction="batch"`` (``loss=dice_batch``: α = 0.01, γ = 1, ``square_denominator=True``, as the authors'
    NER scripts), sums over the items i of the batch in numerator and denominator, per class, then averages
    the classes::

        D_batch = mean_c [1 − (2 Σ_i w_ic t_ic + γ) / (Σ_i D(w_ic) + Σ_i t_ic + γ)]

    It follows ``DiceLoss._compute_dice_loss`` of ShannonAI/dice_loss_for_NLP (``loss/dice_loss.py``, read at
    commit d437bb9) with ``ohem_ratio=0`` and no mask, as ``tasks/mrc_ner/train.py`` calls it for the NER
    scripts (``scripts/ner_*/bert_dice.sh``: ``--dice_alpha 0.01 --dice_smooth 1 --dice_square``,
    ``index_label_position=False``). Their NER model is MRC-style: one sigmoid logit per token (start /
    end), and ``_binary_class`` sums over every position of the batch -- *including padding*, since no mask
    is passed -- for that single positive class. losslab's form differs in three stated ways: a softmax over
    C classes with one batch-level dice per class, averaged (with C = 2 it is the mean of the authors' binary
    dice on ``z₁ − z₀`` with target t and on ``z₀ − z₁`` with target 1 − t); positions labelled -100 are
    left out; ``t² = t``. Their multi-class softmax path (``index_label_position=True``) is per item, not
    per batch: with ``square_denominator`` it is C × losslab's ``reduction="item", square_denominator=True``
    (they sum the classes); without it, its denominator sums over the whole batch while its numerator is per
    item, which losslab does not reproduce. Not checked: whether the paper's reported NER runs used exactly
    this released code.

    Normalization (``losses/base.py``): a batch-level dice is not a sum over items, so a micro-batch of n
    kept items contributes ``n · D_batch(micro-batch) / num_items_in_batch``. Without accumulation (and in
    evaluation) that is exactly ``D_batch`` of the batch. Under gradient accumulation (or data parallelism)
    the step's loss is the item-weighted mean of the micro-batches' dice, each computed over its own items
    only: it is *not* the dice of the whole step's batch, and unlike every other losslab loss it changes
    with the micro-batch size (so keep ``per_device_train_batch_size`` fixed when comparing runs).
    """

    task_kinds = KINDS
    formula = DICE_ITEM_FORMULA
    paper = "Li et al., ACL 2020 (Dice Loss for Data-imbalanced NLP Tasks)"
    reference = ("NumPy closed form; float64 at margins 0–100 (finite gradient); the authors' DiceLoss formulas "
                 "(ShannonAI/dice_loss_for_NLP)")

    def __init__(self, alpha: float = 1.0, gamma: float = 1.0, reduction: str = "item",
                 square_denominator: bool = False, smooth: float | None = None):
        super().__init__()
        if smooth is not None:
            if gamma != 1.0 and float(gamma) != float(smooth):
                raise ValueError(f"dice: smooth is another name for gamma; got gamma={gamma} and smooth={smooth}")
            gamma = smooth
        if not alpha > 0:
            raise ValueError(f"dice: alpha must be > 0, got {alpha}")
        if gamma < 0:
            raise ValueError(f"dice: gamma (smooth) must be >= 0, got {gamma}")
        if reduction not in ("item", "batch"):
            raise ValueError(f"dice: reduction must be 'item' (per item/token) or 'batch', got {reduction!r}")
        self.alpha = float(alpha)
        self.gamma = float(gamma)
        self.reduction = reduction
        self.square_denominator = bool(square_denominator)

    @property
    def exact_under_accumulation(self) -> bool:  # see Loss; the batch form is the one loss that is not
        return self.reduction != "batch"

    @classmethod
    def formula_for(cls, params) -> str:
        """The formula docs/losses.md shows for a config's parameters."""
        square = bool(params.get("square_denominator"))
        if params.get("reduction") == "batch":
            return DICE_BATCH_FORMULA if square else DICE_BATCH_FORMULA.replace("w_ic²", "w_ic")
        return DICE_ITEM_FORMULA.replace("((1 − p_c)^α p_c + t_c", "((1 − p_c)^{2α} p_c² + t_c") if square \
            else DICE_ITEM_FORMULA

    def sum_and_count(self, logits, labels):
        z, y = flatten(logits, labels)
        keep = y != IGNORE_INDEX
        n = keep.sum()
        if z.size(-1) < 2:
            raise ValueError(f"dice: needs at least 2 classes (logits with C >= 2 columns), got {z.size(-1)}")
        if not keep.any():
            return z.sum() * 0.0, n
        logp, log1m = log_p_and_log_1m_p(z[keep])
        w = torch.exp(self.alpha * log1m + logp)  # (1 − p)^α · p
        t = F.one_hot(y[keep], z.size(-1)).to(w.dtype)
        wd = w * w if self.square_denominator else w
        tiny = torch.finfo(w.dtype).tiny  # only γ = 0 with an empty denominator reaches it: 0/tiny = 0
        if self.reduction == "item":
            dsc = 1.0 - (2.0 * w * t + self.gamma) / (wd + t + self.gamma).clamp_min(tiny)
            return dsc.mean(-1).sum(), n
        numerator = 2.0 * (w * t).sum(0) + self.gamma
        denominator = wd.sum(0) + t.sum(0) + self.gamma
        dice = (1.0 - numerator / denominator.clamp_min(tiny)).mean()
        return dice * n, n


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
