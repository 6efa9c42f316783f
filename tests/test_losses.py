"""Each loss against an independent reference: closed forms in NumPy, and the model head's built-in loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import compose
from scipy.special import log_softmax

from losslab import models
from losslab.losses import MAE, MSE, CrossEntropy, Huber

rng = np.random.default_rng(0)


def _reg(n=37):
    pred = rng.normal(size=(n, 1)) * 2
    y = rng.normal(size=n) * 2
    return pred, y


def _t(a, dtype=torch.float32):
    return torch.tensor(a, dtype=dtype)


@pytest.mark.parametrize("loss,reference", [
    (MSE(), lambda e: e**2),
    (MAE(), lambda e: np.abs(e)),
    (Huber(1.0), lambda e: np.where(np.abs(e) <= 1.0, 0.5 * e**2, 1.0 * (np.abs(e) - 0.5))),
    (Huber(0.3), lambda e: np.where(np.abs(e) <= 0.3, 0.5 * e**2, 0.3 * (np.abs(e) - 0.15))),
])
def test_regression_losses_match_closed_form(loss, reference):
    pred, y = _reg()
    per_item = reference(pred[:, 0] - y)
    got_mean = loss({"logits": _t(pred)}, _t(y))  # no num_items_in_batch: the local mean
    np.testing.assert_allclose(got_mean.item(), per_item.mean(), rtol=1e-5)
    got = loss({"logits": _t(pred)}, _t(y), num_items_in_batch=torch.tensor(100.0))
    np.testing.assert_allclose(got.item(), per_item.sum() / 100, rtol=1e-5)


def test_regression_head_shape_is_not_broadcast():
    pred, y = _reg(8)
    # (8, 1) against (8,) must pair item i with label i, not broadcast to (8, 8)
    expected = np.mean((pred[:, 0] - y) ** 2)
    assert MSE()((_t(pred),), _t(y)).item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="do not match labels"):
        MSE()({"logits": torch.zeros(8, 2)}, _t(y))


def test_huber_rejects_bad_delta():
    with pytest.raises(ValueError, match="delta must be > 0"):
        Huber(0)


def test_cross_entropy_matches_log_softmax_and_ignores_padding():
    logits = rng.normal(size=(20, 5)) * 3
    y = rng.integers(0, 5, size=20)
    y[[2, 7, 11]] = -100
    keep = y != -100
    nll = -log_softmax(logits, axis=1)[np.arange(20)[keep], y[keep]]
    loss = CrossEntropy()
    got = loss({"logits": _t(logits)}, _t(y, torch.long))
    np.testing.assert_allclose(got.item(), nll.mean(), rtol=1e-5)
    got = loss({"logits": _t(logits)}, _t(y, torch.long), num_items_in_batch=torch.tensor(40))
    np.testing.assert_allclose(got.item(), nll.sum() / 40, rtol=1e-5)
    torch_ref = torch.nn.functional.cross_entropy(_t(logits), _t(y, torch.long), ignore_index=-100)
    assert got.item() == pytest.approx(torch_ref.item() * keep.sum() / 40, rel=1e-5)


def test_all_ignored_batch_gives_zero_loss_and_zero_gradient():
    logits = torch.randn(4, 3, requires_grad=True)
    loss = CrossEntropy()({"logits": logits}, torch.full((4,), -100))
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(loss)
    assert torch.count_nonzero(logits.grad) == 0


def test_cross_entropy_refuses_float_labels():
    with pytest.raises(ValueError, match="integer class ids"):
        CrossEntropy()({"logits": torch.randn(4, 3)}, torch.rand(4))


@pytest.mark.parametrize("task,ours", [("regression", MSE()), ("sentiment", CrossEntropy())])
def test_default_is_the_model_heads_builtin_loss(task, ours):
    """``loss=default`` lets the head compute its loss; at one micro-batch it equals losslab's mse / cross_entropy."""
    cfg = compose([f"task={task}", "model=tiny", "loss=default"])
    torch.manual_seed(0)
    model, tok = models.build(cfg.model, cfg.task)
    assert model.config.problem_type == models.PROBLEM_TYPES[cfg.task.kind]
    batch = tok(["a fine day", "the worst film", "meh", "I love it"], padding=True, return_tensors="pt")
    labels = torch.tensor([1.5, -3.0, 0.2, 3.1]) if task == "regression" else torch.tensor([1, 0, 0, 1])
    model.eval()
    with torch.no_grad():
        out = model(**batch, labels=labels)
    assert out.loss.item() == pytest.approx(ours(out, labels).item(), rel=1e-6)
