"""The loss contract: every losslab loss is a ``compute_loss_func`` for the Hugging Face Trainer.

``loss(outputs, labels, num_items_in_batch=None)`` returns ``sum(per-item loss) / num_items_in_batch``.
The Trainer counts ``num_items_in_batch`` over every micro-batch of an optimizer step (and over every rank):
label elements that are not -100. So gradient accumulation and data parallelism give the gradient of one
large batch. Only when it is None (evaluation) is the divisor the local item count: the plain mean.

A subclass writes one method, :meth:`Loss.sum_and_count`, returning the summed per-item loss, the number of
items it covers and, optionally, named components (summed the same way: ``{"ce": ..., "z": ...}``); the base
class does every division (fairseq's criterion contract). Components are normalized exactly like the total
and kept, detached, in ``last_components`` for the logs; the loss itself never knows about any logger.

A loss may also say what it needs of the model and how its outputs are read (each looked up with ``getattr``,
so a user's loss that is not a :class:`Loss` may define them too):

- ``head_width(num_labels) -> int``: the head's number of outputs, when it is not the task's number of labels
  (``coral``, ``corn``: K − 1 for K levels; ``gaussian_nll``: a mean and a variance per target);
- ``head_layer(in_features, num_outputs) -> nn.Module | None``: the layer that replaces the final linear layer
  of the model's classification head (``in_features`` → ``num_outputs`` logits; the encoder, pooler and dropout
  stay). ``losslab.models.build(..., loss=loss)`` puts it in place; its parameters are the model's, so they are
  trained, saved in checkpoints and reloaded (``load_best_model_at_end``, resuming) with the model's state
  dict. None (the default): the plain linear layer. ``coral``: CORAL's shared weight and K − 1 biases;
- ``predictions(logits, labels) -> Tensor``: what of the logits the task's metric suite judges (the
  Trainer's ``preprocess_logits_for_metrics``); ``coral``, ``corn``: the K levels' log-probabilities;
- ``predict_levels(logits) -> LongTensor``: the predicted level of each item, for a loss whose own decoding
  is not the argmax of its level scores (``coral``: the number of σ(z_k) > 0.5; ``corn``: the number of
  cumulative products of σ(z_k) > 0.5). The ratings suite and the report's level metrics and degenerate
  check use it (``losslab.metrics.levels``); None (the default): the argmax.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import nn


def logits_of(outputs) -> torch.Tensor:
    """The logits of a model output (a ModelOutput, a dict or a tuple whose first item is the logits)."""
    if isinstance(outputs, Mapping):
        return outputs["logits"]
    if isinstance(outputs, (tuple, list)):
        return outputs[0]
    return outputs


def normalize(total: torch.Tensor, count, num_items_in_batch=None, per_count: float = 1.0) -> torch.Tensor:
    """``total / num_items_in_batch`` (or ``total / count`` when the Trainer gave no count).

    ``per_count`` converts the Trainer's count into this loss's items: a soft-label loss over C classes sees
    C label elements per example, so it divides by ``num_items_in_batch / C``. A divisor of zero (every label
    ignored) gives a zero loss with a zero gradient, never NaN.
    """
    if num_items_in_batch is None:
        denom = count
    else:
        denom = num_items_in_batch / per_count if per_count != 1.0 else num_items_in_batch
    if not torch.is_tensor(denom):
        denom = torch.tensor(denom, dtype=total.dtype, device=total.device)
    return total / denom.to(device=total.device, dtype=total.dtype).clamp_min(1)


class Loss(nn.Module):
    """Base class of losslab's losses. Subclasses set ``task_kinds`` and implement ``sum_and_count``."""

    task_kinds: ClassVar[tuple[str, ...]] = ()
    #: formula of one item, for docs/losses.md
    formula: ClassVar[str] = ""
    #: paper, for docs/losses.md
    paper: ClassVar[str] = ""
    #: what the tests check it against, for docs/losses.md
    reference: ClassVar[str] = ""
    #: False for a loss that is not a sum over items (``Dice(reduction="batch")``): gradient accumulation and
    #: data parallelism do not give the large batch's gradient; its docstring says what they give instead
    exact_under_accumulation: ClassVar[bool] = True
    #: ``predict_levels(logits) -> LongTensor`` (a staticmethod) when the loss decodes levels its own way;
    #: None: the argmax of the level scores (see the module's docstring)
    predict_levels: ClassVar = None

    def __init__(self) -> None:
        super().__init__()
        self.last_components: dict[str, torch.Tensor] = {}

    def sum_and_count(self, logits: torch.Tensor, labels: torch.Tensor):
        """``(summed loss, item count)`` or ``(summed loss, item count, {component: summed value})``."""
        raise NotImplementedError

    def head_layer(self, in_features: int, num_outputs: int) -> nn.Module | None:
        """The layer that replaces the final linear layer of the model's head, or None: keep it (see above)."""
        return None

    def label_elements_per_item(self, logits: torch.Tensor, labels: torch.Tensor) -> float:
        """How many of the Trainer's counted label elements make one item of this loss (1 for most)."""
        return 1.0

    def forward(self, outputs, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
        logits = logits_of(outputs)
        got = self.sum_and_count(logits, labels)
        total, count = got[0], got[1]
        per = self.label_elements_per_item(logits, labels)
        loss = normalize(total, count, num_items_in_batch, per)
        if len(got) > 2:
            self.last_components = {
                name: normalize(value, count, num_items_in_batch, per).detach() for name, value in got[2].items()
            }
        return loss

    def extra_repr(self) -> str:
        shown = {k: v for k, v in vars(self).items() if not k.startswith("_") and k not in ("training", "last_components")}
        return ", ".join(f"{k}={v}" for k, v in shown.items())


def fit_to_train(loss, train_labels, num_classes: int | None = None) -> dict[str, float]:
    """``loss.fit(train_labels)`` for a loss that ``needs_train_labels`` (else ``{}``), passing the task's class
    count as ``num_classes`` when there is one and the loss's ``fit`` takes it (a user's ``fit`` may not)."""
    import inspect

    if not getattr(loss, "needs_train_labels", False):
        return {}
    if num_classes is not None:
        try:
            takes = "num_classes" in inspect.signature(loss.fit).parameters
        except (TypeError, ValueError):
            takes = False
        if takes:
            return loss.fit(train_labels, num_classes=int(num_classes))
    return loss.fit(train_labels)


def weights_option(value, what: str):
    """A per-class (or per-label) weight option: None, ``"balanced"`` (fitted on the training split later),
    or a list of floats."""
    if value is None or value == "balanced":
        return value
    if isinstance(value, str):
        raise ValueError(f"{what} must be a list of floats or 'balanced', got {value!r}")
    return [float(w) for w in value]


def class_weights_balanced(counts, num_classes: int | None = None) -> list[float]:
    """'balanced' class weights from the training split's class counts, one per class id ``0..C-1``.

    A class present in training gets sklearn's ``compute_class_weight('balanced')`` over the present classes,
    ``n / (k · count_c)`` with ``k`` the number of *present* classes: its mean over the training items is then
    exactly 1 (Σ_c count_c · n / (k · count_c) / n = 1), so a weighted loss keeps the scale of the unweighted
    one. A class absent from training (sklearn's formula is undefined there: count 0) gets the mean weight of
    the present classes, so a class seen only in validation or test is not ignored; having no training item,
    it does not move that mean of 1. ``num_classes`` (the task's class count) sets ``C``; without it ``C`` is
    ``len(counts)``. No training item at all: every weight is 1.
    """
    counts = [float(c) for c in counts]
    if num_classes is not None:
        if int(num_classes) < len(counts) and any(c > 0 for c in counts[int(num_classes):]):
            raise ValueError(f"balanced class weights: a training label is >= the class count {num_classes}")
        counts = (counts + [0.0] * int(num_classes))[: int(num_classes)]
    present = [c for c in counts if c > 0]
    if not present:
        return [1.0] * len(counts)
    n, k = sum(present), len(present)
    weights = [n / (k * c) if c > 0 else None for c in counts]
    fill = sum(w for w in weights if w is not None) / k
    return [fill if w is None else w for w in weights]
