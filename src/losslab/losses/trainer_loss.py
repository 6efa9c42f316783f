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
- a class that uses ``num_items_in_batch`` itself, or sets ``loss_is_scaled_for_ga``, runs as it is;
- an error inside it (a shape error, say) is reported as one line naming the class and the line.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from pathlib import Path

import torch

from losslab import kinds
from losslab.errors import UsageError
from losslab.losses.adapt import _one_line, item_count, reads_name
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
        self.trainer_class = adapted if not self.kwargs else _with_kwargs(adapted, self.kwargs)
        return self


def _with_kwargs(cls, kwargs):
    import functools

    return functools.partial(cls, **kwargs)


def _params(func):
    try:
        return inspect.signature(func).parameters
    except (TypeError, ValueError):
        return {}


def _source(func) -> str:
    try:
        return inspect.getsource(func)
    except (OSError, TypeError):
        return ""


def adapt(cls, kind: str, name: str = "loss", item_mean: bool | None = None):
    """``cls`` with its ``compute_loss`` adapted (see the module's docstring)."""
    user = cls.compute_loss
    params = _params(user)
    passes_n = "num_items_in_batch" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
    normalizes = passes_n and reads_name(user, "num_items_in_batch")
    declared = cls.loss_is_scaled_for_ga
    mode = "as_is" if normalizes or declared is not None else "mean"
    label = f"{cls.__module__}.{cls.__qualname__}"
    source_file = inspect.getsourcefile(user) if inspect.isfunction(user) else None
    views_vocab = "vocab_size" in _source(user) and not kinds.get(kind).vocab_output

    def explain(err: BaseException) -> UsageError:
        where = ""
        tb, last = err.__traceback__, None
        while tb is not None:
            if source_file and tb.tb_frame.f_code.co_filename == source_file:
                last = tb
            tb = tb.tb_next
        if last is not None:
            where = f" (at {Path(source_file).name}:{last.tb_lineno})"
        hint = ""
        text = str(err)
        if views_vocab and ("shape" in text or "size" in text):
            hint = (" — a classifier's logits have num_labels columns, not vocab_size: view them with "
                    "self.model.config.num_labels (or not at all)")
        return UsageError(f"loss={name}: {label}.compute_loss failed: {type(err).__name__}: {_one_line(err)}"
                          f"{where}{hint}")

    def call(self, model, inputs, return_outputs, num_items_in_batch):
        try:
            if passes_n:
                return user(self, model, inputs, return_outputs=return_outputs,
                            num_items_in_batch=num_items_in_batch)
            return user(self, model, inputs, return_outputs=return_outputs)
        except UsageError:
            raise
        except torch.OutOfMemoryError:
            raise
        except _USER_ERRORS as err:
            raise explain(err) from err

    def probe(self, model, inputs) -> tuple[bool, str]:
        """Is the value on this micro-batch the item-weighted mean of its values on two parts of it?

        The model runs in evaluation mode (no dropout) without gradients, its logits shifted by fixed noise so
        that the items' losses differ (at initialization they are all alike, and then any function of the
        mean would pass)."""
        batch = next((v.size(0) for v in inputs.values() if torch.is_tensor(v) and v.dim() > 0), 0)
        if batch < 2:
            return False, "its micro-batches hold one example, which cannot be split to check"
        k = max(1, batch // 3)

        def part(sl):
            return {key: (v[sl].clone() if torch.is_tensor(v) and v.dim() > 0 and v.size(0) == batch else v)
                    for key, v in inputs.items()}

        was_training = model.training
        model.eval()  # no dropout: the three values are comparable
        noise = _Noise()
        try:
            with torch.no_grad():
                seen = []
                for sl in (slice(None), slice(0, k), slice(k, None)):
                    sub = part(sl)
                    count = float(item_count(sub["labels"], kind))
                    got = call(self, _NoisyModel(model, noise, sl), sub, False, None)
                    value = got[0] if isinstance(got, tuple) else got
                    seen.append((float(value), count))
        except Exception as err:  # noqa: BLE001  (it ran on the whole micro-batch: a part is the probe's doing)
            cause = err.__cause__ if isinstance(err, UsageError) and err.__cause__ is not None else err
            return False, f"it raised {type(cause).__name__} on part of a micro-batch"
        finally:
            model.train(was_training)
        (full, _), (a, ca), (b, cb) = seen
        if abs(a - b) <= 1e-3 * max(abs(a), abs(b), 1e-12):
            return False, ("its value did not change between two parts of a batch whose logits differ, so "
                           "losslab cannot tell what it is; set item_mean: true in the loss config if it is a "
                           "mean over items")
        expected = (ca * a + cb * b) / max(ca + cb, 1.0)
        tol = 1e-4 if not _autocast() else 2e-3
        if abs(full - expected) <= 1e-6 + tol * abs(expected):
            return True, "the first micro-batch's value is the item-weighted mean of its two parts"
        return False, (f"on the first micro-batch split in two, its value is {full:.6g} but the item-weighted "
                       f"mean of the parts is {expected:.6g}")

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if mode == "as_is":
            return call(self, model, inputs, return_outputs, num_items_in_batch)
        labels = inputs.get("labels") if isinstance(inputs, Mapping) else None
        count = None if labels is None else item_count(labels, kind)
        several = self.args.gradient_accumulation_steps > 1 or self.args.world_size > 1
        decide = model.training and several and self._losslab_rescale is None and labels is not None
        kept = dict(inputs) if decide else None  # compute_loss may pop the labels
        got = call(self, model, inputs, return_outputs, num_items_in_batch)
        self.loss_is_scaled_for_ga = declared
        if not model.training or not several or labels is None:
            return got
        if num_items_in_batch is None:
            if not self._losslab_warned:
                log.warning("loss=%s: the Trainer counts no num_items_in_batch for this model, so %s's per-micro-"
                            "batch loss is divided by the accumulation steps: exact only when every micro-batch "
                            "holds as many items", name, cls.__qualname__)
                self._losslab_warned = True
            return got
        if decide:
            if item_mean is not None:
                ok, seen = item_mean, f"item_mean: {str(item_mean).lower()}"
            else:
                ok, seen = probe(self, model, kept)
            if self.args.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
                verdict = torch.tensor([1.0 if ok else 0.0], device=self.args.device)
                torch.distributed.all_reduce(verdict, op=torch.distributed.ReduceOp.MIN)  # all ranks agree
                ok = bool(verdict.item())
            if not ok:
                steps = self.args.gradient_accumulation_steps * self.args.world_size
                raise UsageError(
                    f"loss={name}: {label}.compute_loss returns a loss per micro-batch that is not a mean over its "
                    f"items ({seen}), so losslab cannot make it exact, and with gradient_accumulation_steps="
                    f"{self.args.gradient_accumulation_steps} on {self.args.world_size} process(es) its gradients "
                    f"would be about {steps}x too large. Take num_items_in_batch in compute_loss and return "
                    "sum(per-item loss) / num_items_in_batch (or set loss_is_scaled_for_ga), or run with "
                    "gradient_accumulation_steps=1 on one process.")
            log.info("loss=%s: %s.compute_loss returns a mean over its micro-batch's items (%s): losslab multiplies "
                     "it by items / num_items_in_batch, exact under accumulation", name, cls.__qualname__, seen)
            self._losslab_rescale = True
        loss = got[0] if isinstance(got, tuple) else got
        if int(count) == 0:  # every label ignored: no loss, no gradient
            loss = loss.new_zeros(()).requires_grad_()
        else:
            loss = normalize(loss * count.to(loss.device), count, num_items_in_batch)
        if self.args.average_tokens_across_devices:  # what Trainer.compute_loss does for a normalized loss
            loss = loss * (self.accelerator.num_processes // self.get_tp_size() if self.args.n_gpu <= 1
                           else self.args.n_gpu)
        self.loss_is_scaled_for_ga = True  # read by training_step right after this call
        return (loss, *got[1:]) if isinstance(got, tuple) else loss

    compute_loss.__doc__ = f"{label}.compute_loss, adapted by losslab (losslab.losses.trainer_loss)."
    return type(cls.__name__, (cls,), {
        "__module__": cls.__module__, "__qualname__": cls.__qualname__, "compute_loss": compute_loss,
        "_losslab_mode": mode, "_losslab_rescale": None, "_losslab_warned": False,
    })


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


def _autocast() -> bool:
    for device in ("cpu", "cuda"):
        try:
            if torch.is_autocast_enabled(device):
                return True
        except TypeError:  # an older torch: no device argument
            return torch.is_autocast_enabled()
    return False
