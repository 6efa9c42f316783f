"""Ordinal regression losses: K ordered levels (ratings), K − 1 logits, integer level labels 0..K−1.

Both losses train K − 1 binary tasks on the same K − 1 outputs and read them back as a level the papers' way;
they differ in the head and in which items each task sees:

- ``coral`` (Cao, Mirjalili & Raschka 2020): CORAL's own head, one weight vector shared by the K − 1 tasks and
  K − 1 independent biases (:class:`CoralLayer`, in place of the classifier's final linear layer); task k
  "level > k" on every item; level = the number of σ(z_k) > 0.5.
- ``corn`` (Shi, Cao & Raschka 2021): a plain K − 1-output head; task k is trained on the items with level
  ≥ k only (the conditional "level > k given level > k − 1"); P(level > k) = Π_{j ≤ k} σ(z_j), and
  level = the number of those products > 0.5.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from losslab.kinds import IGNORE_INDEX, ORDINAL
from losslab.losses.base import Loss


class CoralLayer(nn.Module):
    """CORAL's output layer: ``z_k = w · h + b_k``, one weight vector ``w`` shared by the K − 1 binary tasks and
    K − 1 independent biases (Cao et al. 2020, eq. 4). The shared ``w`` makes the tasks' probabilities
    rank-consistent whenever the biases are ordered (b_1 ≥ … ≥ b_{K−1}, which the paper's Theorem 1 shows
    of the loss's minimizer), so P(level > k) falls with k.

    Parameter names, shapes and initialization are ``coral_pytorch.layers.CoralLayer``'s (``coral_weights``:
    ``Linear(in_features, 1, bias=False)``, torch's default init; ``coral_bias``: (K − 1, ..., 1) / (K − 1)),
    so a state dict moves between the two; ``tests/test_ordinal.py`` checks that both give the same logits.
    """

    def __init__(self, in_features: int, num_outputs: int):
        super().__init__()
        self.coral_weights = nn.Linear(in_features, 1, bias=False)
        self.coral_bias = nn.Parameter(torch.arange(num_outputs, 0, -1).float() / num_outputs)

    @property
    def in_features(self) -> int:
        return self.coral_weights.in_features

    @property
    def out_features(self) -> int:
        return self.coral_bias.numel()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.coral_weights(x) + self.coral_bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features} (one shared weight vector)"


def _keep(logits, labels):
    z = logits.reshape(-1, logits.size(-1)).float()
    y = labels.reshape(-1).to(z.device)
    keep = y != IGNORE_INDEX
    return z[keep], y[keep].long(), keep.sum()


def _level_log_probs(p_gt: torch.Tensor) -> torch.Tensor:
    """Log-probabilities of the K levels from P(level > k), k = 0..K − 2: P(level = k) = P(level > k − 1) −
    P(level > k), clipped at 1e-12 and renormalized (a difference is negative only where P(level > k) rises
    with k, which neither head does once CORAL's biases are ordered)."""
    ones = torch.ones_like(p_gt[..., :1])
    cumulative = torch.cat([ones, p_gt, torch.zeros_like(ones)], dim=-1)
    probs = (cumulative[..., :-1] - cumulative[..., 1:]).clamp_min(1e-12)
    return torch.log(probs / probs.sum(-1, keepdim=True))


class Coral(Loss):
    """CORAL (Cao et al. 2020): K − 1 binary tasks "level > k" on CORAL's shared-weight head, BCE summed per item.

    The loss brings its head (:meth:`head_layer`): ``models.build`` replaces the classifier's final linear
    layer by a :class:`CoralLayer` (one weight vector, K − 1 biases), keeping the encoder, pooler and dropout.
    Predicted level (:meth:`predict_levels`, the paper's rule): the number of tasks with σ(z_k) > 0.5.
    Per item this is ``coral_pytorch.losses.coral_loss``'s sum over tasks; it is divided by
    ``num_items_in_batch`` (coral_pytorch's ``reduction='mean'``, the same at one micro-batch per step).

    Before issue #32 ``loss=coral`` trained this loss on a plain K − 1-output linear head: the ordinal binary
    decomposition of Niu et al. (2016), which is not rank-consistent. The committed ``soft_labels`` study ran
    that, and took its level by the argmax of the level probabilities (see experiments/findings.md).

    ``bias_init``: where the K − 1 biases start.

    - ``"coral_pytorch"`` (the default, the authors' package): (K − 1, ..., 1) / (K − 1), thresholds 1/(K − 1)
      apart. Only the biases set the thresholds' spacing (the weight is shared), and AdamW moves a parameter by
      about the learning rate per step: at fine-tuning rates (1e-4, a few hundred steps) they cannot move the
      ~1 logit apart that the levels need, and every item is scored near the middle of the scale
      (``experiment=ordinal_levels``: the gaps were still 0.125 after 188 steps, in 5 of 5 seeds). The authors
      train from scratch at 5e-4 for thousands of steps, where they can.
    - ``"prior"``: b_k = logit of the training split's share of items with level > k (shares clipped to
      [1/2n, 1 − 1/2n], so an empty end level stays finite): before training, an item scored w·h = 0 gets the
      training split's level distribution, the prior initialization Lin et al. (2017) use for focal loss's
      head. Set by :meth:`fit` once the training labels are known, on a head built fresh before or after it (a
      head loaded from a saved model keeps its biases); a resumed run's checkpoint overwrites it as it does
      every weight.
    """

    task_kinds = (ORDINAL,)
    formula = "−Σ_k [ [y > k] log σ(z_k) + [y ≤ k] log(1 − σ(z_k)) ], z_k = w·h + b_k (shared w)"
    paper = "Cao, Mirjalili & Raschka, Pattern Recognition Letters 2020"
    reference = "NumPy closed form; coral_pytorch 1.4 (CoralLayer, coral_loss, proba_to_label)"
    BIAS_INITS = ("coral_pytorch", "prior")

    def __init__(self, bias_init: str = "coral_pytorch"):
        super().__init__()
        if bias_init not in self.BIAS_INITS:
            raise ValueError(f"bias_init must be one of {', '.join(self.BIAS_INITS)}, got {bias_init!r}")
        self.bias_init = bias_init
        self._layers: list[CoralLayer] = []  # the heads this loss built (a list: not a submodule of the loss)
        self._prior = None  # bias_init=prior: the K − 1 biases, once fitted

    @property
    def needs_train_labels(self) -> bool:
        return self.bias_init == "prior"

    def fit(self, train_labels, num_classes: int | None = None) -> dict[str, float]:
        """``bias_init="prior"``: the K − 1 biases from the training split's levels (class ids, or one
        distribution over the K levels per item: its mean rounded half up, as ``LevelsFromDistribution``). They go
        into the head this loss built, when it was built fresh, and into any head it builds later. K: the head's
        K − 1 outputs + 1, else ``num_classes``, else the distributions' width, else the highest level + 1.
        Returns the biases for the logs (``loss.fitted.coral_bias.<k>``)."""
        import numpy as np

        layer = self._layers[-1] if self._layers else None
        rows = [np.asarray(r, dtype=float) for r in train_labels]
        width = rows[0].size if rows and rows[0].ndim == 1 and rows[0].size > 1 else None
        k = layer.out_features + 1 if layer is not None else int(num_classes or width or 0)
        if width is not None and width == k or (layer is None and not num_classes and width):
            y = np.floor(np.stack(rows) @ np.arange(width) + 0.5).astype(int)  # a distribution per item
        else:
            y = np.concatenate([np.ravel(r) for r in rows]).astype(int) if rows else np.zeros(0, dtype=int)
            y = y[y != IGNORE_INDEX]
        k = k or (int(y.max()) + 1 if y.size else 0)
        if y.size == 0 or k < 2 or (y < 0).any() or (y >= k).any():
            raise ValueError(f"coral: bias_init=prior needs training levels in 0..{k - 1}, got "
                             f"{'none' if y.size == 0 else f'{int(y.min())}..{int(y.max())}'}")
        n = y.size
        share = np.clip([(y > j).mean() for j in range(k - 1)], 0.5 / n, 1 - 0.5 / n)
        self._prior = np.log(share / (1 - share))
        if layer is not None:
            if getattr(layer, "loaded_from", None):  # a saved head: its trained biases stay
                return {}
            self._start(layer)
        return {f"coral_bias.{j}": float(b) for j, b in enumerate(self._prior)}

    def _start(self, layer: CoralLayer) -> None:
        """Put the fitted prior into ``layer``'s biases."""
        with torch.no_grad():
            layer.coral_bias.copy_(torch.as_tensor(self._prior, dtype=layer.coral_bias.dtype))

    def sum_and_count(self, logits, labels):
        z, y, count = _keep(logits, labels)
        levels = torch.arange(z.size(-1), device=z.device)
        t = (y.unsqueeze(1) > levels).float()
        return F.binary_cross_entropy_with_logits(z, t, reduction="sum"), count

    @staticmethod
    def head_width(num_labels: int) -> int:
        """K ordered levels need K − 1 binary tasks."""
        return num_labels - 1

    def head_layer(self, in_features: int, num_outputs: int) -> nn.Module:
        """CORAL's layer: one shared weight vector and ``num_outputs`` (K − 1) biases."""
        layer = CoralLayer(in_features, num_outputs)
        if self._prior is not None:  # fitted before the head was built (bias_init=prior)
            if len(self._prior) != num_outputs:
                raise ValueError(f"coral: the prior was fitted for {len(self._prior) + 1} levels, the head has "
                                 f"{num_outputs + 1}")
            self._start(layer)
        self._layers.append(layer)
        return layer

    @staticmethod
    def predictions(logits: torch.Tensor, labels=None) -> torch.Tensor:
        """Log-probabilities of the K levels, P(y = k) = P(y > k − 1) − P(y > k) with P(y > k) = σ(z_k)
        (clipped and renormalized where the biases are not ordered), for the suite's KL, log loss and ECE."""
        return _level_log_probs(torch.sigmoid(logits.float()))

    @staticmethod
    def predict_levels(logits: torch.Tensor) -> torch.Tensor:
        """The paper's predicted level: the number of tasks with σ(z_k) > 0.5."""
        return (torch.sigmoid(logits.float()) > 0.5).sum(-1)


class Corn(Loss):
    """CORN (Shi et al. 2021): K − 1 conditional binary tasks on a plain head, task k on the items of level ≥ k.

    Task k learns P(y > k | y > k − 1), so it is trained only on the items with y > k − 1 (task 0 on all);
    P(y > k) = Π_{j ≤ k} σ(z_j) falls with k whatever the weights (rank-consistent by construction, with a plain
    K − 1-output linear head). Predicted level (:meth:`predict_levels`): the number of those products > 0.5.
    Normalization: the per-item sum over the item's tasks, divided by ``num_items_in_batch`` (exact under
    gradient accumulation). ``coral_pytorch.losses.corn_loss`` divides the same sum by the number of
    (item, task) pairs in its batch instead, which changes from batch to batch: ours = theirs × pairs / items.
    """

    task_kinds = (ORDINAL,)
    formula = "−Σ_{k ≤ min(y, K−2)} [ [y > k] log σ(z_k) + [y = k] log(1 − σ(z_k)) ]"
    paper = "Shi, Cao & Raschka, arXiv 2111.08851 (2021); Pattern Analysis and Applications 2023"
    reference = "NumPy closed form; coral_pytorch 1.4 (corn_loss × pairs / items, corn_label_from_logits)"

    def sum_and_count(self, logits, labels):
        z, y, count = _keep(logits, labels)
        levels = torch.arange(z.size(-1), device=z.device)
        seen = (y.unsqueeze(1) >= levels).float()  # task k's subset: y > k − 1
        t = (y.unsqueeze(1) > levels).float()
        bce = F.binary_cross_entropy_with_logits(z, t, reduction="none")
        return (bce * seen).sum(), count

    @staticmethod
    def head_width(num_labels: int) -> int:
        """K ordered levels need K − 1 conditional binary tasks."""
        return num_labels - 1

    @staticmethod
    def predictions(logits: torch.Tensor, labels=None) -> torch.Tensor:
        """Log-probabilities of the K levels from P(y > k) = Π_{j ≤ k} σ(z_j)."""
        return _level_log_probs(torch.cumprod(torch.sigmoid(logits.float()), dim=-1))

    @staticmethod
    def predict_levels(logits: torch.Tensor) -> torch.Tensor:
        """The paper's predicted level: the number of k with Π_{j ≤ k} σ(z_j) > 0.5."""
        return (torch.cumprod(torch.sigmoid(logits.float()), dim=-1) > 0.5).sum(-1)
