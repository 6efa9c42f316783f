"""Turn whatever ``_target_`` a loss config names into a correct ``compute_loss_func``, or refuse it.

- losslab losses and callables with the Trainer's signature ``(outputs, labels, num_items_in_batch)``
  are used as they are (they normalize by ``num_items_in_batch`` themselves);
- a module with a ``reduction`` attribute (every ``torch.nn`` loss: ``nn.MSELoss()``, ``nn.CrossEntropyLoss()``,
  ...) is switched to ``reduction="sum"`` and divided by ``num_items_in_batch``: exact under accumulation;
- any other callable ``(prediction, labels) -> number`` (most tutorials' losses) gets what it was written for:
  the logits tensor when it runs on one, else the model output object (code that reads ``outputs.<field>`` or
  ``outputs["logits"]``), tried once on a synthetic batch when the loss is built; labels come shaped like the
  prediction (regression with one output: ``(batch, 1)``). Under gradient accumulation or several processes,
  a callable that returns a *mean over its micro-batch's items* is made exact by multiplying it by
  ``local items / num_items_in_batch``: when it declares ``item_mean = True``, or when a probe on a synthetic
  batch and its two parts shows ``loss(batch)`` is the item-weighted mean of the parts. One that is not (a
  batch statistic such as RMSE or a correlation) is refused, never silently run with gradients k times too
  large;
- ``losslab.losses.trainer_loss.TrainerLoss`` names a Trainer subclass whose own ``compute_loss`` computes
  the loss (see that module).
"""

from __future__ import annotations

import inspect
import logging
import warnings

import torch

from losslab import kinds
from losslab.errors import UsageError
from losslab.kinds import IGNORE_INDEX
from losslab.losses.base import logits_of, normalize

log = logging.getLogger("losslab")


def takes_num_items(fn) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "num_items_in_batch" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _pair(logits, labels, kind):
    if kinds.get(kind).scalar_target and logits.dim() == labels.dim() + 1 and logits.size(-1) == 1:
        return logits.squeeze(-1).float(), labels.float()
    return logits, labels


def shaped_labels(prediction: torch.Tensor, labels: torch.Tensor, kind: str) -> torch.Tensor:
    """Labels shaped like the prediction they are compared with: a regression head with one output gives
    ``(batch, 1)``, so ``nn.MSELoss()(outputs.logits, labels)`` gets ``(batch, 1)`` labels, not ``(batch,)``
    (which would broadcast to a ``(batch, batch)`` matrix and a wrong loss)."""
    if kinds.get(kind).scalar_target and prediction.dim() == labels.dim() + 1 and prediction.size(-1) == 1:
        return labels.unsqueeze(-1).float()
    return labels


def _count(labels) -> torch.Tensor:
    return (labels != IGNORE_INDEX).sum()


def item_count(labels: torch.Tensor, kind: str) -> torch.Tensor:
    """The items of a micro-batch as the Trainer counts them for ``num_items_in_batch``: label elements that
    are not -100 (shifted by one for causal LM)."""
    return _count(labels[..., 1:] if kinds.get(kind).next_token else labels)


class SumReduced(torch.nn.Module):
    """A ``torch.nn``-style loss set to ``reduction="sum"`` and divided by ``num_items_in_batch``."""

    def __init__(self, module: torch.nn.Module, kind: str):
        super().__init__()
        module.reduction = "sum"
        self.module, self.kind = module, kind
        self.task_kinds = getattr(module, "task_kinds", None)

    def forward(self, outputs, labels, num_items_in_batch=None):
        logits, target = _pair(logits_of(outputs), labels, self.kind)
        if logits.dim() == 3 and target.dim() == 2 and not target.is_floating_point():  # per-token classes
            logits, target = logits.reshape(-1, logits.size(-1)), target.reshape(-1)
        return normalize(self.module(logits, target), _count(target), num_items_in_batch)


class BatchMean(torch.nn.Module):
    """A ``(prediction, labels) -> number`` callable, given the model output or the logits as it expects.

    Given the model output, regression labels come shaped like the head's ``(batch, 1)`` logits, unless the
    callable is a mean over items only with ``(batch,)`` labels (code that squeezes or indexes the logits
    itself): a probe on a synthetic batch decides, since the ``(batch, batch)`` broadcast that the wrong shape
    gives is never such a mean. With ``rescale`` (its value is a mean over the items of its micro-batch:
    declared or probed), the value is multiplied by ``local items / num_items_in_batch``, i.e. it becomes
    ``sum(per-item loss) / num_items_in_batch``: exact under gradient accumulation and data parallelism.
    Without it the value is used as it is, which is correct only at one micro-batch per step on one process.
    """

    def __init__(self, fn, kind: str, takes_outputs: bool | None = None, rescale: bool = False, width: int = 1):
        super().__init__()
        self.fn, self.kind, self.rescale, self.width = fn, kind, rescale, width
        self.takes_outputs = wants_model_output(fn, kind, width) if takes_outputs is None else takes_outputs
        self.task_kinds = getattr(fn, "task_kinds", None)
        self.labels_like_prediction = True
        if self.takes_outputs:
            self._choose_label_shape()

    def _choose_label_shape(self) -> None:
        if not kinds.get(self.kind).scalar_target or int(self.width or 1) != 1:
            return
        if probe_item_mean(self, self.kind, self.width)[0]:
            return
        self.labels_like_prediction = False
        if not probe_item_mean(self, self.kind, self.width)[0]:  # neither shape helps: the documented one
            self.labels_like_prediction = True

    def call(self, outputs, labels):
        """The callable's own value on this micro-batch."""
        if not self.takes_outputs:
            return self.fn(*_pair(logits_of(outputs), labels, self.kind))
        if self.labels_like_prediction:
            labels = shaped_labels(logits_of(outputs), labels, self.kind)
        return self.fn(outputs, labels)

    def forward(self, outputs, labels, num_items_in_batch=None):
        value = self.call(outputs, labels)
        if not self.rescale or num_items_in_batch is None:
            return value
        count = item_count(labels, self.kind)
        if int(count) == 0:  # every label ignored: the mean is undefined; no loss, a zero gradient
            return logits_of(outputs).sum() * 0.0
        return normalize(value * count, count, num_items_in_batch)


# ---------------------------------------------------------------------- probes on a synthetic batch
def _probe_batch(kind: str, width: int, generator: torch.Generator):
    """A synthetic micro-batch of 8 items for ``kind``: ``(logits, labels)``."""
    n, t = 8, 5
    c = max(int(width or 1), 1)
    kind = kinds.get(kind)
    if kind.scalar_target:
        return torch.randn(n, c, generator=generator), torch.randn(n, generator=generator)  # one target each
    if kind.target is kinds.floats:  # a row of 0/1 targets per item
        return torch.randn(n, c, generator=generator), torch.randint(0, 2, (n, c), generator=generator).float()
    c = max(c, 2)
    if kind.per_token:  # padding (-100) in unequal amounts per row
        labels = torch.randint(0, c, (n, t), generator=generator)
        labels[torch.arange(n) % 3 == 0, -2:] = IGNORE_INDEX
        labels[1, -1] = IGNORE_INDEX
        return torch.randn(n, t, c, generator=generator), labels
    return torch.randn(n, c, generator=generator), torch.randint(0, c, (n,), generator=generator)


def _as_output(logits: torch.Tensor, kind: str):
    from transformers import modeling_outputs

    return getattr(modeling_outputs, kinds.get(kind).output)(logits=logits)


def wants_model_output(fn, kind: str, width: int = 1) -> bool:
    """Whether ``fn`` expects the model output object as its first argument, not the logits tensor, decided by
    calling it on a synthetic batch (``takes_outputs = True|False`` on the callable overrides this).

    False when it runs on the logits tensor; else True when it runs on the model output. When it runs on
    neither (the batch is not what it expects, or it reads a field the synthetic output lacks, such as
    ``outputs.hidden_states``): False when its error on the model output names the output's type (the code
    used it as a tensor: ``'SequenceClassifierOutput' object has no attribute 'view'``), else True.
    """
    declared = getattr(fn, "takes_outputs", None)
    if declared is not None:
        return bool(declared)
    logits, labels = _probe_batch(kind, width, torch.Generator().manual_seed(0))
    if _raised(fn, *_pair(logits, labels, kind)) is None:
        return False
    output = _as_output(logits, kind)
    err = _raised(fn, output, shaped_labels(logits, labels, kind))
    return err is None or type(output).__name__ not in str(err)


def _raised(fn, *args) -> Exception | None:
    """What ``fn(*args)`` raised, without gradients or warnings (a made-up batch: they are not the run's)."""
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn(*args)
    except Exception as err:  # noqa: BLE001  (the user's code on a made-up batch: anything can happen)
        return err
    return None


def probe_item_mean(adapted: BatchMean, kind: str, width: int = 1) -> tuple[bool, str]:
    """Whether ``adapted`` returns a mean over the items of its micro-batch: on a synthetic batch of 8 split
    into 3 + 5, ``loss(batch) == (3-part items · loss(3-part) + 5-part items · loss(5-part)) / items``.
    A sum, a batch statistic (RMSE, a correlation) or a mean that also counts padding fails. Returns
    ``(verdict, what was seen)``."""
    g = torch.Generator().manual_seed(0)
    logits, labels = _probe_batch(kind, width, g)
    parts = [(logits, labels), (logits[:3], labels[:3]), (logits[3:], labels[3:])]
    try:
        with torch.no_grad():
            values = [adapted.call(_as_output(z, kind), y) for z, y in parts]
    except Exception as err:  # noqa: BLE001  (the user's code on a made-up batch: anything can happen)
        return False, f"it raised {type(err).__name__} on a probe batch: {_one_line(err)}"
    if not all(torch.is_tensor(v) and v.numel() == 1 for v in values):
        return False, "it did not return one number per batch"
    full, a, b = (float(v) for v in values)
    ca, cb = (float(item_count(y, kind)) for _, y in parts[1:])
    expected = (ca * a + cb * b) / (ca + cb)
    if not all(map(lambda v: v == v and abs(v) != float("inf"), (full, a, b))):
        return False, "it was not finite on a probe batch"
    if abs(a - b) <= 1e-3 * max(abs(a), abs(b), 1e-12):
        return False, "its value did not change between two different probe batches, so losslab cannot tell"
    if abs(full - expected) <= 1e-6 + 1e-4 * abs(expected):
        return True, f"loss(batch) = {full:.6g} = the item-weighted mean of its two parts"
    return False, (f"on a probe batch split in two, loss(batch) = {full:.6g} but the item-weighted mean of its "
                   f"parts is {expected:.6g}")


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= 300 else text[:297] + "..."


def as_compute_loss_func(loss, kind: str, accumulation_steps: int = 1, world_size: int = 1, name: str = "loss",
                         width: int = 1):
    """The callable to hand the Trainer as ``compute_loss_func`` (None: the model computes its own loss).

    ``width`` is the head's number of outputs (the task's labels), for the probe's synthetic batch.
    """
    if getattr(loss, "uses_model_loss", False):
        return None
    if getattr(loss, "binds_trainer", False):  # losses.trainer_loss.TrainerLoss
        return loss.bind(kind, accumulation_steps, world_size, name)
    target = loss.forward if isinstance(loss, torch.nn.Module) else loss
    if takes_num_items(target):
        return loss
    if isinstance(getattr(loss, "reduction", None), str):
        return SumReduced(loss, kind)
    adapted = BatchMean(loss, kind, width=width)
    if accumulation_steps <= 1 and world_size <= 1:
        return adapted  # one micro-batch per step on one process: its own mean is the right value
    declared = getattr(loss, "item_mean", None)
    if declared is None:
        ok, seen = probe_item_mean(adapted, kind, width)
    else:
        ok, seen = bool(declared), f"it declares item_mean = {bool(declared)}"
    if ok:
        log.info("loss=%s (%s) returns a mean over its micro-batch's items (%s): losslab multiplies it by "
                 "items / num_items_in_batch, exact under accumulation", name, type(loss).__name__, seen)
        adapted.rescale = True
        return adapted
    steps = accumulation_steps * world_size
    raise UsageError(
        f"loss={name} ({type(loss).__name__}) returns one number per micro-batch with no `reduction` to switch to "
        f"a sum, and it is not a mean over its items that losslab could rescale ({seen}). With "
        f"gradient_accumulation_steps={accumulation_steps} on {world_size} process(es) its gradients would be "
        f"about {steps}x too large. Give it the Trainer's signature (outputs, labels, num_items_in_batch) and "
        "return sum(per-item loss) / num_items_in_batch, give it a `reduction` attribute losslab can set to "
        "'sum', or set `item_mean = True` on it if it is a mean over the items of its batch."
    )

