"""A loss computed inside a Trainer subclass's own ``compute_loss`` (the pattern of the Trainer docs).

    # my_conf/loss/smoothed_trainer.yaml
    _target_: losslab.losses.trainer_loss.TrainerLoss
    trainer_class: my_trainers.CustomLossTrainer    # a transformers.Trainer subclass that overrides compute_loss
    # item_mean: true      # optional: its loss is a mean over the micro-batch's items (no probe needed)
    # kwargs: {}           # optional: more keyword arguments for its constructor

    python train.py hydra.searchpath=[file://$PWD/my_conf] task=sentiment loss=smoothed_trainer
    python train.py -m hydra.searchpath=[file://$PWD/my_conf] task=sentiment loss=label_smoothing,smoothed_trainer

losslab builds the run's Trainer from that class (with losslab's data, metrics and callbacks, and no
``compute_loss_func``: the loss is the one computed in the class) and adapts its ``compute_loss``:

- the old signature ``compute_loss(self, model, inputs, return_outputs=False)`` is called without the
  ``num_items_in_batch`` that transformers 5 passes;
- a ``compute_loss`` that ignores ``num_items_in_batch`` returns a mean over its micro-batch, which the
  Trainer (for models whose ``forward`` takes ``**kwargs``, such as BERT) does not divide by the accumulation
  steps: k times too large. losslab checks, on the first training micro-batch split in two (evaluation mode, no
  gradient), that the value is the item-weighted mean of its parts, and then multiplies it by
  ``local items / num_items_in_batch``: exact under gradient accumulation and data parallelism. If it is not
  such a mean (and the class does not say, with ``loss_is_scaled_for_ga``, how it scales), accumulation or
  several processes are refused with one line; one micro-batch per step on one process runs it as it is;
- a class that sets ``loss_is_scaled_for_ga`` runs as it is, and so does one whose ``compute_loss`` takes
  ``num_items_in_batch`` and whose value changes with it (checked on that first micro-batch, before the mean);
- an error inside it (a shape error, say) is reported as one line naming the class and the line.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from losslab import kinds
from losslab.errors import UsageError
from losslab.losses.adapt import _one_line, item_count, takes_num_items
from losslab.losses.base import normalize

log = logging.getLogger("losslab")

_USER_ERRORS = (RuntimeError, ValueError, IndexError, TypeError, KeyError, AttributeError)


class TrainerLoss:
    """``loss=`` option whose loss is computed by a Trainer subclass (``trainer_class``, a dotted path).

    Not a ``compute_loss_func``: ``run.build_trainer`` builds the Trainer from :attr:`trainer_class` (set by
    :meth:`bind`, which ``losses.adapt.as_compute_loss_func`` calls) and passes no ``compute_loss_func``.
    """

    takes_distributions = True  # the class gets the task's labels as they are
    binds_trainer = True  # as_compute_loss_func calls bind (adapt does not import this module)

    def __init__(self, trainer_class: str, item_mean: bool | None = None, kwargs: Mapping | None = None):
        self.spec = str(trainer_class)
        self.item_mean = None if item_mean is None else bool(item_mean)
        self.kwargs = dict(kwargs or {})
        self.trainer_class = None

    def __repr__(self) -> str:
        return f"TrainerLoss(trainer_class={self.spec!r}, item_mean={self.item_mean})"

    def __call__(self, *args, **kwargs):
        raise TypeError("TrainerLoss is not a compute_loss_func: build the Trainer from its trainer_class "
                        "(losslab.run.build_trainer does) and pass no compute_loss_func")

    def bind(self, kind: str, accumulation_steps: int = 1, world_size: int = 1, name: str = "loss"):
        """Import and check the class, and set :attr:`trainer_class` to it, adapted; returns self."""
        from hydra.utils import get_object
        from transformers import Seq2SeqTrainer, Trainer

        try:
            cls = get_object(self.spec)
        except Exception as exc:  # noqa: BLE001  (ImportError, AttributeError, ... wrapped by Hydra)
            raise UsageError(f"loss={name}: cannot import trainer_class {self.spec!r}: {exc}") from exc
        if not (isinstance(cls, type) and issubclass(cls, Trainer)):
            raise UsageError(f"loss={name}: trainer_class {self.spec!r} is not a transformers.Trainer subclass")
        if kinds.get(kind).generates and not issubclass(cls, Seq2SeqTrainer):
            raise UsageError(f"loss={name}: task kind {kind} is evaluated on generated text, which needs a "
                             f"Seq2SeqTrainer: make {cls.__qualname__} subclass transformers.Seq2SeqTrainer")
        if cls.compute_loss is Trainer.compute_loss:
            raise UsageError(f"loss={name}: {self.spec} does not override compute_loss, so it computes no loss of "
                             "its own; name a losslab loss (loss=...) instead")
        adapted = adapt(cls, kind, name, self.item_mean)
        if (adapted._losslab_mode == "mean" and self.item_mean is False
                and (accumulation_steps > 1 or world_size > 1)):
            raise UsageError(
                f"loss={name}: {self.spec}.compute_loss returns a per-micro-batch value that is not a mean over "
                f"items (item_mean: false), so with gradient_accumulation_steps={accumulation_steps} on "
                f"{world_size} process(es) its gradients would be about {accumulation_steps * world_size}x too "
                "large. Take num_items_in_batch in compute_loss and return sum(per-item loss) / "
                "num_items_in_batch, or run with gradient_accumulation_steps=1 on one process.")
        self.trainer_class = functools.partial(adapted, **self.kwargs) if self.kwargs else adapted
        return self


def adapt(cls, kind: str, name: str = "loss", item_mean: bool | None = None):
    """``cls`` with :class:`AdaptedComputeLoss` in front of it (see the module's docstring).

    Its mode: ``as_is`` when it sets ``loss_is_scaled_for_ga``; ``mean`` when its ``compute_loss`` cannot take
    ``num_items_in_batch`` (its value is per micro-batch); ``check`` when it can (whether it uses it is seen on
    the first training micro-batch under accumulation)."""
    passes_n = takes_num_items(cls.compute_loss)
    mode = "as_is" if cls.loss_is_scaled_for_ga is not None else "check" if passes_n else "mean"
    code = getattr(inspect.unwrap(cls.compute_loss), "__code__", None)
    return type(cls.__name__, (AdaptedComputeLoss, cls), {
        "__module__": cls.__module__, "__qualname__": cls.__qualname__, "_losslab_kind": kind,
        "_losslab_name": name, "_losslab_item_mean": item_mean, "_losslab_mode": mode, "_losslab_passes_n": passes_n,
        "_losslab_label": f"{cls.__module__}.{cls.__qualname__}", "_losslab_file": code and code.co_filename,
    })


class AdaptedComputeLoss:
    """A Trainer mixin, put in front of a user's Trainer subclass by :func:`adapt` (which sets the class
    attributes below): its ``compute_loss`` calls the class's own and makes it exact under accumulation."""

    _losslab_kind, _losslab_name, _losslab_label, _losslab_item_mean = "single_label", "loss", "Trainer", None
    _losslab_mode = "mean"  # as_is | mean | check (see adapt); check becomes as_is or mean on the first micro-batch
    _losslab_passes_n, _losslab_rescale, _losslab_warned = False, None, False
    _losslab_file: str | None = None  # the file of the user's compute_loss, to name the line of an error

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The class's own compute_loss, adapted by losslab (losslab.losses.trainer_loss)."""
        if self._losslab_mode == "as_is":
            return self._call_user_compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs.get("labels") if isinstance(inputs, Mapping) else None
        several = self.args.gradient_accumulation_steps > 1 or self.args.world_size > 1
        decide = model.training and several and self._losslab_rescale is None and labels is not None
        kept = dict(inputs) if decide else None  # compute_loss may pop the labels
        got = self._call_user_compute_loss(model, inputs, return_outputs, num_items_in_batch)
        self.loss_is_scaled_for_ga = None
        if not model.training or not several or labels is None:
            return got
        if num_items_in_batch is None:
            if self._losslab_mode == "mean" and not self._losslab_warned:
                log.warning("loss=%s: the Trainer counts no num_items_in_batch for this model, so %s's per-micro-"
                            "batch loss is divided by the accumulation steps: exact only when every micro-batch "
                            "holds as many items", self._losslab_name, self._losslab_label)
                self._losslab_warned = True
            return got
        if decide:
            self._decide_rescale(model, kept)
        if self._losslab_mode == "as_is":
            return got
        return self._scale_to_items(got, labels, num_items_in_batch)

    def _call_user_compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The class's own compute_loss (without ``num_items_in_batch`` when its signature is the old one); an
        error inside it becomes one line (:meth:`_explain_error`)."""
        user = super().compute_loss
        try:
            if self._losslab_passes_n:
                return user(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
            return user(model, inputs, return_outputs=return_outputs)
        except (UsageError, torch.OutOfMemoryError):
            raise
        except _USER_ERRORS as err:
            raise self._explain_error(err) from err

    def _explain_error(self, err: BaseException) -> UsageError:
        """One line naming the class, the error, the line of the user's file, and a hint when the error's text
        holds the model's vocab_size on a task whose logits are not vocabulary-wide (the Trainer docs' view)."""
        where, tb, last = "", err.__traceback__, None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == self._losslab_file:
                last = tb
            tb = tb.tb_next
        if last is not None:
            where = f" (at {Path(self._losslab_file).name}:{last.tb_lineno})"
        vocab = getattr(getattr(getattr(self, "model", None), "config", None), "vocab_size", None)
        hint = ""
        if (isinstance(vocab, int) and not kinds.get(self._losslab_kind).vocab_output
                and re.search(rf"(?<!\d){vocab}(?!\d)", str(err))):
            hint = (" — a classifier's logits have num_labels columns, not vocab_size: view them with "
                    "self.model.config.num_labels (or not at all)")
        return UsageError(f"loss={self._losslab_name}: {self._losslab_label}.compute_loss failed: "
                          f"{type(err).__name__}: {_one_line(err)}{where}{hint}")

    def _decide_rescale(self, model, inputs) -> None:
        """On the first training micro-batch under accumulation or several processes: run as it is when its value
        changes with ``num_items_in_batch``; else rescale it when it is a mean over items (declared or probed);
        else refuse with one line. Every process reaches the same verdict."""
        if self._losslab_mode == "check" and self._agree(self._uses_num_items(model, inputs)):
            self._losslab_mode = "as_is"
            return
        declared = self._losslab_item_mean
        if declared is not None:
            ok, seen = declared, f"item_mean: {str(declared).lower()}"
        else:
            ok, seen = self._probe_item_mean(model, inputs)
        if not self._agree(ok):
            steps = self.args.gradient_accumulation_steps * self.args.world_size
            raise UsageError(
                f"loss={self._losslab_name}: {self._losslab_label}.compute_loss returns a loss per micro-batch that "
                f"is not a mean over its items ({seen}), so losslab cannot make it exact, and with "
                f"gradient_accumulation_steps={self.args.gradient_accumulation_steps} on {self.args.world_size} "
                f"process(es) its gradients would be about {steps}x too large. Take num_items_in_batch in "
                "compute_loss and return sum(per-item loss) / num_items_in_batch (or set loss_is_scaled_for_ga), "
                "or run with gradient_accumulation_steps=1 on one process.")
        log.info("loss=%s: %s.compute_loss returns a mean over its micro-batch's items (%s): losslab multiplies it "
                 "by items / num_items_in_batch, exact under accumulation", self._losslab_name,
                 self._losslab_label, seen)
        self._losslab_rescale = True

    def _agree(self, ok: bool) -> bool:
        """``ok`` on every process (the minimum over them)."""
        if self.args.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            verdict = torch.tensor([1.0 if ok else 0.0], device=self.args.device)
            torch.distributed.all_reduce(verdict, op=torch.distributed.ReduceOp.MIN)
            return bool(verdict.item())
        return bool(ok)

    def _values(self, model, inputs, runs) -> list[tuple[float, float]]:
        """compute_loss's ``(value, items)`` for each ``(slice of the micro-batch, num_items_in_batch)`` of
        ``runs``: in evaluation mode (no dropout: the values are comparable), without gradients, the logits shifted
        by fixed noise so that the items' losses differ (at initialization they are all alike, and then any
        function of the mean would pass)."""
        batch = _batch_size(inputs)
        noise, was_training = _Noise(), model.training
        model.eval()
        try:
            with torch.no_grad():
                seen = []
                for sl, n in runs:
                    sub = {k: (v[sl].clone() if torch.is_tensor(v) and v.dim() > 0 and v.size(0) == batch else v)
                           for k, v in inputs.items()}
                    count = float(item_count(sub["labels"], self._losslab_kind))
                    got = self._call_user_compute_loss(_NoisyModel(model, noise, sl), sub, False, n)
                    seen.append((float(got[0] if isinstance(got, tuple) else got), count))
                return seen
        finally:
            model.train(was_training)

    def _uses_num_items(self, model, inputs) -> bool:
        """Whether compute_loss's value on this micro-batch changes with ``num_items_in_batch`` (given its own
        items, then twice as many)."""
        n = item_count(inputs["labels"], self._losslab_kind)
        try:
            (a, _), (b, _) = self._values(model, inputs, [(slice(None), n), (slice(None), 2 * n)])
        except Exception:  # noqa: BLE001  (then it is probed as a mean, which reports the error)
            return False
        return abs(a - b) > 1e-6 * max(abs(a), abs(b), 1e-12)

    def _probe_item_mean(self, model, inputs) -> tuple[bool, str]:
        """Is the value on this micro-batch the item-weighted mean of its values on two parts of it?"""
        batch = _batch_size(inputs)
        if batch < 2:
            return False, "its micro-batches hold one example, which cannot be split to check"
        k = max(1, batch // 3)
        try:
            (full, _), (a, ca), (b, cb) = self._values(
                model, inputs, [(slice(None), None), (slice(0, k), None), (slice(k, None), None)])
        except Exception as err:  # noqa: BLE001  (it ran on the whole micro-batch: a part is the probe's doing)
            cause = err.__cause__ if isinstance(err, UsageError) and err.__cause__ is not None else err
            return False, f"it raised {type(cause).__name__} on part of a micro-batch"
        if abs(a - b) <= 1e-3 * max(abs(a), abs(b), 1e-12):
            return False, ("its value did not change between two parts of a batch whose logits differ, so "
                           "losslab cannot tell what it is; set item_mean: true in the loss config if it is a "
                           "mean over items")
        expected = (ca * a + cb * b) / max(ca + cb, 1.0)
        tol = 2e-3 if any(torch.is_autocast_enabled(d) for d in ("cpu", "cuda")) else 1e-4
        if abs(full - expected) <= 1e-6 + tol * abs(expected):
            return True, "the first micro-batch's value is the item-weighted mean of its two parts"
        return False, (f"on the first micro-batch split in two, its value is {full:.6g} but the item-weighted "
                       f"mean of the parts is {expected:.6g}")

    def _scale_to_items(self, got, labels, num_items_in_batch):
        """compute_loss's value (a mean over this micro-batch's items) times ``items / num_items_in_batch``:
        ``sum(per-item loss) / num_items_in_batch``, as Trainer.compute_loss leaves a normalized loss."""
        loss = got[0] if isinstance(got, tuple) else got
        count = item_count(labels, self._losslab_kind)
        if int(count) == 0:  # every label ignored: no loss, no gradient
            loss = loss.new_zeros(()).requires_grad_()
        else:
            loss = normalize(loss * count.to(loss.device), count, num_items_in_batch)
        if self.args.average_tokens_across_devices:  # what Trainer.compute_loss does for a normalized loss
            loss = loss * (self.accelerator.num_processes // self.get_tp_size() if self.args.n_gpu <= 1
                           else self.args.n_gpu)
        self.loss_is_scaled_for_ga = True  # read by training_step right after this call
        return (loss, *got[1:]) if isinstance(got, tuple) else loss


def _batch_size(inputs) -> int:
    return next((v.size(0) for v in inputs.values() if torch.is_tensor(v) and v.dim() > 0), 0)


class _Noise:
    """Fixed noise of the full batch's logits shape (drawn at the first call), sliced for its parts."""

    def __init__(self):
        self.full = None

    def __call__(self, logits: torch.Tensor, sl: slice) -> torch.Tensor:
        if self.full is None:
            g = torch.Generator().manual_seed(0)
            self.full = 2.0 * torch.randn(logits.shape, generator=g)
        return self.full[sl].to(device=logits.device, dtype=logits.dtype)


class _NoisyModel:
    """The model, its logits shifted by fixed noise (everything else is the model's own)."""

    def __init__(self, model, noise: _Noise, sl: slice):
        self._model, self._noise, self._slice = model, noise, sl

    def __call__(self, *args, **kwargs):
        out = self._model(*args, **kwargs)
        if isinstance(out, Mapping) and out.get("logits") is not None:
            out["logits"] = out["logits"] + self._noise(out["logits"], self._slice)
        elif isinstance(out, tuple) and out and torch.is_tensor(out[0]):
            out = (out[0] + self._noise(out[0], self._slice), *out[1:])
        return out

    def __getattr__(self, name):
        return getattr(self._model, name)

