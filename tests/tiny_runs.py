"""In-process runs of the real wiring (``losslab.run.build_trainer``: the loss, the metric suite, evaluation in
length order) on a few rows with the tiny model, for tests that train or evaluate without a subprocess."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from conftest import compose
from hydra.utils import instantiate

from losslab import models
from losslab.run import build_trainer, compute_loss_func, training_arguments
from losslab.tasks import data, encoding

NO_DROPOUT = ["+model.architecture.hidden_dropout_prob=0.0", "+model.architecture.attention_probs_dropout_prob=0.0"]


@dataclass
class Setup:
    cfg: object
    loss: object
    model: object
    tokenizer: object
    encoded: dict
    names: list | None

    def trainer(self, **args):
        """A Trainer as ``train.py`` builds it (no tracker); ``args`` set TrainingArguments fields."""
        arguments = training_arguments(self.cfg)
        for key, value in args.items():
            setattr(arguments, key, value)
        return build_trainer(self.cfg, compute_loss_func(self.cfg, self.loss), self.model, self.tokenizer,
                             self.encoded, arguments, label_names=self.names)


def setup(task: str, loss: str, tmp_path, overrides=()) -> Setup:
    """The tiny model (no dropout) for ``task`` and ``loss``, with its splits encoded (validation and test in
    length order); a constant learning rate with no warm-up or decay, fp32 on the CPU, no tracker."""
    cfg = compose([f"task={task}", f"loss={loss}", "debug=quick", "hardware=cpu", "trainer.report_to=[]",
                   f"trainer.output_dir={tmp_path}", "trainer.disable_tqdm=true", "trainer.warmup_steps=0",
                   "trainer.lr_scheduler_type=constant", "trainer.weight_decay=0.0", "trainer.logging_steps=1",
                   "trainer.eval_strategy=no", "trainer.save_strategy=no", "trainer.load_best_model_at_end=false",
                   "trainer.train_sampling_strategy=random", *NO_DROPOUT, *overrides])
    loss_fn = instantiate(cfg.loss)
    splits, names = data.load_splits(cfg.task)
    torch.manual_seed(0)
    model, tokenizer = models.build(cfg.model, cfg.task, width=models.head_width(loss_fn, cfg.task), label_names=names,
                                    loss=loss_fn)
    encoded = dict(encoding.encode(splits, tokenizer, cfg.task, eval_in_length_order=True))
    if getattr(loss_fn, "needs_train_labels", False):
        loss_fn.fit(encoded["train"]["labels"])
    return Setup(cfg, loss_fn, model, tokenizer, encoded, names)
