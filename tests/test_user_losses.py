"""A user's own loss: adapted when it can be made exact under accumulation, refused when it cannot."""

from __future__ import annotations

import pytest
import torch
from user_losses import TutorialMSE

from losslab.errors import UsageError
from losslab.losses import MSE
from losslab.losses.adapt import BatchMean, SumReduced, as_compute_loss_func


def _grad(fn, x, y, w, micro):
    w.grad = None
    n = torch.tensor(y.numel())
    for xs, ys in zip(x.chunk(micro), y.chunk(micro)):
        fn({"logits": xs @ w.T}, ys, num_items_in_batch=n).backward()
    return w.grad.clone()


def test_losslab_and_trainer_signature_losses_are_used_as_they_are():
    loss = MSE()
    assert as_compute_loss_func(loss, "regression", accumulation_steps=8) is loss

    def mine(outputs, labels, num_items_in_batch=None):
        return outputs["logits"].sum()

    assert as_compute_loss_func(mine, "regression", accumulation_steps=8) is mine


def test_torch_loss_with_reduction_is_made_exact_under_accumulation():
    fn = as_compute_loss_func(torch.nn.MSELoss(), "regression", accumulation_steps=4)
    assert isinstance(fn, SumReduced)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 3, generator=g), torch.randn(16, generator=g)
    w = torch.randn(1, 3, generator=g, requires_grad=True)
    torch.testing.assert_close(_grad(fn, x, y, w, 4), _grad(fn, x, y, w, 1), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(_grad(fn, x, y, w, 1), _grad(MSE(), x, y, w, 1), atol=1e-6, rtol=1e-5)
    ce = as_compute_loss_func(torch.nn.CrossEntropyLoss(), "single_label", accumulation_steps=4)
    z, lab = torch.randn(6, 3), torch.tensor([0, 2, -100, 1, 1, -100])
    assert ce({"logits": z}, lab).item() == pytest.approx(torch.nn.functional.cross_entropy(z, lab).item(), rel=1e-6)


def test_tutorial_batch_mean_is_refused_under_accumulation_and_explained():
    with pytest.raises(UsageError, match=r"gradients would be 4x too large.*num_items_in_batch"):
        as_compute_loss_func(TutorialMSE(), "regression", accumulation_steps=4, name="tutorial_mse")
    with pytest.raises(UsageError, match="2 process"):
        as_compute_loss_func(TutorialMSE(), "regression", accumulation_steps=1, world_size=2)
    fn = as_compute_loss_func(TutorialMSE(), "regression", accumulation_steps=1)
    assert isinstance(fn, BatchMean)
    pred, y = torch.randn(5, 1), torch.randn(5)
    assert fn({"logits": pred}, y).item() == pytest.approx(((pred[:, 0] - y) ** 2).mean().item())
