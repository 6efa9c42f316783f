"""Test-only losses for tests/test_faults.py: MSE that stops at a gate, so a test can act on a live job."""

from __future__ import annotations

import time
from pathlib import Path

import torch


class Gated(torch.nn.MSELoss):
    """MSE that, at its ``pause_at``-th training call (gradients on; evaluation does not count), writes
    ``<gate>.reached`` and waits while the file ``gate`` exists (at most ``limit`` seconds). Without the gate
    file it never waits: a rerun of the same config goes straight through."""

    def __init__(self, gate: str, pause_at: int = 6, limit: float = 120.0):
        super().__init__()
        self.gate, self.pause_at, self.limit, self.calls = Path(gate), pause_at, limit, 0

    def forward(self, input, target):
        if torch.is_grad_enabled():
            self.calls += 1
            if self.calls == self.pause_at and self.gate.exists():
                Path(f"{self.gate}.reached").write_text(f"call {self.calls}\n")
                deadline = time.monotonic() + self.limit
                while self.gate.exists() and time.monotonic() < deadline:
                    time.sleep(0.05)
        return super().forward(input, target)


class NanOnce(torch.nn.MSELoss):
    """MSE that returns NaN (with NaN gradients) at its ``at``-th training call, once: the file ``marker``
    remembers, so a rerun of the same config trains on. A diverged step at a chosen point, between two
    checkpoints and logging steps."""

    def __init__(self, at: int, marker: str):
        super().__init__()
        self.at, self.marker, self.calls = at, Path(marker), 0

    def forward(self, input, target):
        loss = super().forward(input, target)
        if torch.is_grad_enabled():
            self.calls += 1
            if self.calls == self.at and not self.marker.exists():
                self.marker.write_text(f"nan at call {self.calls}\n")
                return loss * float("nan")
        return loss
