"""A user's own losses, importable from the tests' search path (``PYTHONPATH=tests``)."""

import torch
from torch import nn
from transformers import Trainer


def nan_loss(outputs, labels, num_items_in_batch=None):
    """A loss with the Trainer's signature that has diverged: NaN, with a gradient."""
    return outputs["logits"].sum() * torch.tensor(float("nan"))


nan_loss.task_kinds = ("regression", "single_label")


class TutorialMSE(torch.nn.Module):
    """The pattern of most tutorials: (logits, labels) -> batch mean, and no `reduction` to switch."""

    def forward(self, logits, labels):
        return ((logits - labels) ** 2).mean()


class CustomMSELoss(nn.Module):
    """The classic tutorial module, verbatim: it reads ``outputs.logits``, so it wants the model output."""

    def __init__(self):
        super().__init__()
        self.mse_loss = nn.MSELoss()

    def forward(self, outputs, labels):
        return self.mse_loss(outputs.logits, labels)


class TutorialRMSE(nn.Module):
    """RMSE, a batch statistic and not a mean over items: no rescaling can make it exact under accumulation."""

    def forward(self, logits, labels):
        return torch.sqrt(nn.functional.mse_loss(logits, labels))


class DeclaredMean(nn.Module):
    """A mean over items whose code losslab is told about instead of probing it."""

    item_mean = True

    def forward(self, logits, labels):
        return ((logits - labels) ** 2).mean()


class CustomLossTrainer(Trainer):
    """The Trainer docs' pattern as published: the old signature (no num_items_in_batch), label smoothing,
    and the logits viewed with ``vocab_size`` -- a shape error for a sequence classifier."""

    def compute_loss(self, model, inputs, return_outputs=False):
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        logits = outputs.get("logits")
        loss_fct = nn.CrossEntropyLoss(label_smoothing=0.1)
        loss = loss_fct(logits.view(-1, self.model.config.vocab_size), labels.view(-1))
        return (loss, outputs) if return_outputs else loss


class SmoothedLossTrainer(Trainer):
    """The same with the one fix a sequence classifier needs (``num_labels``); still the old signature."""

    def compute_loss(self, model, inputs, return_outputs=False):
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        logits = outputs.get("logits")
        loss_fct = nn.CrossEntropyLoss(label_smoothing=0.1)
        loss = loss_fct(logits.view(-1, self.model.config.num_labels), labels.view(-1))
        return (loss, outputs) if return_outputs else loss


class SqrtLossTrainer(Trainer):
    """A compute_loss whose value is not a mean over items (the square root of one): not rescalable."""

    def compute_loss(self, model, inputs, return_outputs=False):
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        loss = nn.functional.cross_entropy(outputs.logits, labels).sqrt()
        return (loss, outputs) if return_outputs else loss


class DiesOnce(torch.nn.MSELoss):
    """MSE that SIGKILLs its own process at its ``at_call``-th call, once: the marker file remembers, so
    the resumed run goes on. A real ``kill -9`` mid-training, at a deterministic point."""

    def __init__(self, at_call: int, marker: str):
        super().__init__()
        self.at_call, self.marker, self.calls = at_call, marker, 0

    def forward(self, input, target):
        import os
        import signal
        from pathlib import Path

        self.calls += 1
        if self.calls == self.at_call and not Path(self.marker).exists():
            Path(self.marker).write_text(f"killed at call {self.calls}\n")
            os.kill(os.getpid(), signal.SIGKILL)
        return super().forward(input, target)
