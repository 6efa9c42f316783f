"""A user's own losses, importable from the tests' search path (``PYTHONPATH=tests``)."""

import torch


def nan_loss(outputs, labels, num_items_in_batch=None):
    """A loss with the Trainer's signature that has diverged: NaN, with a gradient."""
    return outputs["logits"].sum() * torch.tensor(float("nan"))


nan_loss.task_kinds = ("regression", "single_label")


class TutorialMSE(torch.nn.Module):
    """The pattern of most tutorials: (logits, labels) -> batch mean, and no `reduction` to switch."""

    def forward(self, logits, labels):
        return ((logits - labels) ** 2).mean()


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
