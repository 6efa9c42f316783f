"""Evaluation without padding waste, with every prediction mapped back to its item.

Validation and test are evaluated in length order (``tasks.encoding.in_length_order``: each row keeps its index
as ``item``), so a batch of 128 sentences is padded to its longest, which is barely longer than its shortest.
The metric suites do not depend on the order of the items; the per-item predictions written at the end of a
run (``losslab.predictions``) carry ``item``, so they map back to the data.
"""

from __future__ import annotations

class InOrderEvaluation:
    """A Trainer mixin: evaluation reads a split in its own order (losslab puts its splits in length order).

    With ``train_sampling_strategy=group_by_length`` the Trainer would also group evaluation batches by length,
    but in a shuffled order of batches (a ``LengthGroupedSampler``), so the predictions could not be mapped
    back to the items. Here a split is read sequentially on one process; under DDP the accelerator shards it
    in order and gathers the predictions back in order.
    """

    def _get_eval_sampler(self, eval_dataset):
        if eval_dataset is None or self.args.world_size > 1:
            return None
        from torch.utils.data import SequentialSampler

        return SequentialSampler(eval_dataset)


def trainer_class(base):
    """``base`` (the Trainer, the Seq2SeqTrainer or a user's subclass) with :class:`InOrderEvaluation`."""
    return type(base.__name__, (InOrderEvaluation, base), {"__module__": base.__module__})


def predict(trainer, dataset, prefix: str):
    """Evaluate ``dataset`` as ``Trainer.evaluate`` does (the metrics logged under ``prefix``, the callbacks'
    ``on_evaluate`` called) and return the ``PredictionOutput`` too, so the predictions can be kept."""
    out = trainer.predict(dataset, metric_key_prefix=prefix)
    trainer.log(out.metrics)
    trainer.control = trainer.callback_handler.on_evaluate(trainer.args, trainer.state, trainer.control,
                                                           out.metrics)
    return out


class ValidationPredictions:
    """Keeps the validation predictions that evaluations during training already computed, so the final
    model's need no extra pass: wraps ``compute_metrics`` (which sees every evaluation's predictions) and, as
    a Trainer callback, files them under the step of the evaluation. Only the latest and the best so far (by
    the Trainer's ``metric_for_best_model``) are kept."""

    def __init__(self, compute_metrics):
        self.compute_metrics = compute_metrics
        self.pending = None
        self.kept: dict[int, tuple] = {}
        self.best: tuple[float, int] | None = None

    def __call__(self, eval_pred):
        self.pending = (eval_pred.predictions, eval_pred.label_ids)
        return self.compute_metrics(eval_pred)

    def callback(self):
        from transformers import TrainerCallback

        keeper = self

        class _File(TrainerCallback):
            def on_evaluate(self, args, state, control, metrics=None, **kwargs):
                keeper.file(args, state.global_step, metrics or {})

        return _File()

    def file(self, args, step: int, metrics: dict) -> None:
        pending, self.pending = self.pending, None
        if pending is None or not any(k.startswith("eval_") for k in metrics):
            return  # not a validation evaluation (the test split is kept by the caller)
        name = args.metric_for_best_model or "loss"
        value = metrics.get(name if name.startswith("eval_") else f"eval_{name}")
        better = value is not None and (self.best is None or (
            value > self.best[0] if args.greater_is_better else value < self.best[0]))
        keep = {step} | ({self.best[1]} if self.best and not better else set())
        if better:
            self.best = (value, step)
        self.kept = {s: p for s, p in self.kept.items() if s in keep}
        self.kept[step] = pending

    def final(self, trainer):
        """``(predictions, label_ids)`` of the final model on validation, or None when that evaluation was not
        seen (e.g. it ran before a resume)."""
        state, args = trainer.state, trainer.args
        step = state.best_global_step if args.load_best_model_at_end and state.best_global_step else \
            state.global_step
        return self.kept.get(step)
