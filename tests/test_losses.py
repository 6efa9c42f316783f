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


@pytest.fixture(autouse=True)
def _fresh_random_state():
    """Each test draws from its own fresh generators (NumPy's ``rng`` and torch's), seeded the same: its values
    do not depend on which tests ran before it, or in what order."""
    global rng
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    yield


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
def test_model_loss_is_the_model_heads_builtin_loss(task, ours):
    """``loss=model_loss`` lets the head compute its loss; at one micro-batch it equals losslab's mse /
    cross_entropy."""
    cfg = compose([f"task={task}", "model=tiny", "loss=model_loss"])
    torch.manual_seed(0)
    model, tok = models.build(cfg.model, cfg.task)
    assert model.config.problem_type == {"regression": "regression", "sentiment": "single_label_classification"}[task]
    batch = tok(["a fine day", "the worst film", "meh", "I love it"], padding=True, return_tensors="pt")
    labels = torch.tensor([1.5, -3.0, 0.2, 3.1]) if task == "regression" else torch.tensor([1, 0, 0, 1])
    model.eval()
    with torch.no_grad():
        out = model(**batch, labels=labels)
    assert out.loss.item() == pytest.approx(ours(out, labels).item(), rel=1e-6)


# ---------------------------------------------------------------- the catalog (issue: the loss library)
import torch.nn.functional as F  # noqa: E402
from scipy.special import expit, log_softmax as np_log_softmax, logsumexp, softmax  # noqa: E402
from sklearn.metrics import mean_pinball_loss  # noqa: E402
from sklearn.utils.class_weight import compute_class_weight  # noqa: E402

from losslab.losses import (  # noqa: E402
    BCE, Asymmetric, ChunkedCrossEntropy, Composite, Coral, Corn, Dice, Focal, GaussianNLL, LabelSmoothing,
    LogCosh, MultiMargin, Poly1, Quantile, SigmoidFocal, SmoothL1, SoftCrossEntropy, TokenCrossEntropy,
    TokenLabelSmoothing, WeightedCrossEntropy, ZLoss,
)


def _cls(n=30, c=4, ignore=(3, 8)):
    z = rng.normal(size=(n, c)) * 2
    y = rng.integers(0, c, size=n)
    y[list(ignore)] = -100
    return z, y


def _kept(z, y):
    keep = y != -100
    return z[keep], y[keep]


def test_smooth_l1_closed_form_and_huber_relation():
    pred, y = _reg()
    e = np.abs(pred[:, 0] - y)
    expected = np.where(e < 0.7, 0.5 * e**2 / 0.7, e - 0.35).mean()
    got = SmoothL1(0.7)({"logits": _t(pred)}, _t(y)).item()
    assert got == pytest.approx(expected, rel=1e-5)
    assert Huber(0.7)({"logits": _t(pred)}, _t(y)).item() == pytest.approx(0.7 * got, rel=1e-5)


def test_log_cosh_matches_numpy_and_stays_finite_far_out():
    pred, y = _reg()
    np.testing.assert_allclose(LogCosh()({"logits": _t(pred)}, _t(y)).item(),
                               np.log(np.cosh(pred[:, 0] - y)).mean(), rtol=1e-5)
    big = torch.tensor([[100.0], [-100.0]], requires_grad=True)
    loss = LogCosh()({"logits": big}, torch.zeros(2))
    loss.backward()
    assert loss.item() == pytest.approx(100 - np.log(2), rel=1e-6)
    assert torch.isfinite(big.grad).all()


@pytest.mark.parametrize("q", [0.1, 0.5, 0.9])
def test_quantile_matches_sklearn_pinball(q):
    pred, y = _reg()
    got = Quantile(q)({"logits": _t(pred)}, _t(y)).item()
    assert got == pytest.approx(mean_pinball_loss(y, pred[:, 0], alpha=q), rel=1e-5)


def test_gaussian_nll_matches_torch_with_softplus_variance():
    head = rng.normal(size=(25, 2))
    y = rng.normal(size=25)
    var = np.log1p(np.exp(head[:, 1]))
    expected = (0.5 * (np.log(var) + (y - head[:, 0]) ** 2 / var)).mean()
    got = GaussianNLL()({"logits": _t(head)}, _t(y)).item()
    assert got == pytest.approx(expected, rel=1e-5)
    ref = F.gaussian_nll_loss(_t(head[:, 0]), _t(y), F.softplus(_t(head[:, 1])))
    assert got == pytest.approx(ref.item(), rel=1e-5)
    assert GaussianNLL.predictions(_t(head)).shape == (25,)


def test_soft_cross_entropy_soft_onehot_and_class_ids():
    z = rng.normal(size=(12, 5))
    t = softmax(rng.normal(size=(12, 5)), axis=1)
    expected = -(t * np_log_softmax(z, axis=1)).sum(1).mean()
    got = SoftCrossEntropy()({"logits": _t(z)}, _t(t))
    assert got.item() == pytest.approx(expected, rel=1e-5)
    assert got.item() == pytest.approx(F.cross_entropy(_t(z), _t(t)).item(), rel=1e-5)
    # The Trainer counts 12 x 5 label elements for float targets: the loss divides by 12 items.
    assert SoftCrossEntropy()({"logits": _t(z)}, _t(t), num_items_in_batch=torch.tensor(60)).item() == \
        pytest.approx(expected, rel=1e-5)
    zc, yc = _cls()
    assert SoftCrossEntropy()({"logits": _t(zc)}, _t(yc, torch.long)).item() == pytest.approx(
        CrossEntropy()({"logits": _t(zc)}, _t(yc, torch.long)).item(), rel=1e-6)


def test_label_smoothing_matches_torch_and_closed_form_with_padding():
    z, y = _cls()
    zk, yk = _kept(z, y)
    logp = np_log_softmax(zk, axis=1)
    eps = 0.2
    expected = ((1 - eps) * -logp[np.arange(len(yk)), yk] + eps * -logp.mean(1)).mean()
    got = LabelSmoothing(eps)({"logits": _t(z)}, _t(y, torch.long)).item()
    assert got == pytest.approx(expected, rel=1e-5)
    torch_ref = F.cross_entropy(_t(z), _t(y, torch.long), label_smoothing=eps, ignore_index=-100)
    assert got == pytest.approx(torch_ref.item(), rel=1e-5)


def test_weighted_cross_entropy_divides_by_items_and_balanced_weights_match_sklearn():
    z, y = _cls()
    w = [0.5, 2.0, 1.0, 3.0]
    zk, yk = _kept(z, y)
    nll = -np_log_softmax(zk, axis=1)[np.arange(len(yk)), yk]
    got = WeightedCrossEntropy(w)({"logits": _t(z)}, _t(y, torch.long)).item()
    assert got == pytest.approx((np.array(w)[yk] * nll).sum() / len(yk), rel=1e-5)
    train = rng.integers(0, 4, size=500)
    loss = WeightedCrossEntropy("balanced")
    logged = loss.fit(train)
    np.testing.assert_allclose(loss.weights, compute_class_weight("balanced", classes=np.arange(4), y=train))
    assert set(logged) == {f"class_weight.{c}" for c in range(4)}


def test_focal_matches_closed_form_and_gamma_zero_is_cross_entropy():
    z, y = _cls()
    zk, yk = _kept(z, y)
    logp = np_log_softmax(zk, axis=1)[np.arange(len(yk)), yk]
    expected = (-0.25 * (1 - np.exp(logp)) ** 2 * logp).mean()
    assert Focal(2.0, 0.25)({"logits": _t(z)}, _t(y, torch.long)).item() == pytest.approx(expected, rel=1e-5)
    assert Focal(0.0)({"logits": _t(z)}, _t(y, torch.long)).item() == pytest.approx(-logp.mean(), rel=1e-5)


def _authors_flsd53(z, y):
    """FLSD-53 as torrvision/focal_calibration's FocalLossAdaptive(gamma=3) computes it (re-written here): per
    item, p_t >= 0.5 -> gamma 3; else the first of {0.2: 5, 0.5: 3} that p_t is below; gamma a constant
    (``.item()``); the sum of -(1 - p_t)^gamma log p_t, divided by the items."""
    logpt = torch.log_softmax(z, dim=1).gather(1, y.view(-1, 1)).view(-1)
    pt = logpt.exp()
    gammas = []
    for v in pt.tolist():
        gammas.append(3.0 if v >= 0.5 else next(g for key, g in ((0.2, 5.0), (0.5, 3.0)) if v < key))
    return (-(1 - pt) ** torch.tensor(gammas, dtype=z.dtype) * logpt).sum() / len(y)


def test_focal_flsd53_matches_the_authors_rule_and_gradient():
    torch.manual_seed(0)
    z = torch.randn(64, 5) * 3  # p_y spread over all three bands (float32: the loss computes in float32)
    y = torch.randint(0, 5, (64,))
    p = torch.softmax(z, 1).gather(1, y.view(-1, 1)).view(-1)
    assert (p < 0.2).any() and ((p >= 0.2) & (p < 0.5)).any() and (p >= 0.5).any()
    ours_z, ref_z = z.clone().requires_grad_(), z.clone().requires_grad_()
    ours = Focal("flsd53")({"logits": ours_z}, y)
    ref = _authors_flsd53(ref_z, y)
    ours.backward(), ref.backward()
    assert ours.item() == pytest.approx(ref.item(), rel=1e-6)
    torch.testing.assert_close(ours_z.grad, ref_z.grad)
    with pytest.raises(ValueError, match="flsd53"):
        Focal("flsd35")


@pytest.mark.parametrize("gamma", [0.3, 0.5, 2.0])
def test_focal_stays_finite_when_probabilities_saturate(gamma):
    z = torch.tensor([[60.0, -60.0, 0.0], [0.0, 80.0, -80.0]], requires_grad=True)
    loss = Focal(gamma)({"logits": z}, torch.tensor([0, 1]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


def test_poly1_closed_form():
    z, y = _cls()
    zk, yk = _kept(z, y)
    logp = np_log_softmax(zk, axis=1)[np.arange(len(yk)), yk]
    expected = (-logp + 0.7 * (1 - np.exp(logp))).mean()
    assert Poly1(0.7)({"logits": _t(z)}, _t(y, torch.long)).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("p", [1, 2])
def test_multi_margin_matches_torch_and_closed_form(p):
    z, y = _cls()
    zk, yk = _kept(z, y)
    margins = np.maximum(0, 0.8 - zk[np.arange(len(yk)), yk][:, None] + zk) ** p
    margins[np.arange(len(yk)), yk] = 0
    expected = (margins.sum(1) / z.shape[1]).mean()
    got = MultiMargin(p=p, margin=0.8)({"logits": _t(z)}, _t(y, torch.long)).item()
    assert got == pytest.approx(expected, rel=1e-5)
    assert got == pytest.approx(F.multi_margin_loss(_t(zk), _t(yk, torch.long), p=p, margin=0.8).item(), rel=1e-5)


def test_dice_closed_form():
    z, y = _cls()
    zk, yk = _kept(z, y)
    p = softmax(zk, axis=1)
    t = np.eye(z.shape[1])[yk]
    pw = (1 - p) * p
    expected = (1 - (2 * pw * t + 1) / (pw + t + 1)).mean(1).mean()
    assert Dice()({"logits": _t(z)}, _t(y, torch.long)).item() == pytest.approx(expected, rel=1e-5)


def _ml(n=10, k=4):
    z = rng.normal(size=(n, k)) * 2
    t = rng.integers(0, 2, size=(n, k)).astype(float)
    t[1, 2] = -100
    return z, t


def test_bce_matches_torch_with_pos_weight_and_ignored_elements():
    z, t = _ml()
    keep = t != -100
    pw = np.array([1.0, 2.0, 0.5, 3.0])
    ref = F.binary_cross_entropy_with_logits(
        _t(z[keep]), _t(t[keep]), pos_weight=_t(np.broadcast_to(pw, z.shape)[keep]), reduction="mean")
    assert BCE(pw.tolist())({"logits": _t(z)}, _t(t)).item() == pytest.approx(ref.item(), rel=1e-5)
    loss = BCE("balanced")
    train = rng.integers(0, 2, size=(100, 4))
    loss.fit(train)
    np.testing.assert_allclose(loss.pos_weight, (train == 0).sum(0) / (train == 1).sum(0))


def test_sigmoid_focal_matches_torchvision_formula():
    z, t = _ml()
    keep = t != -100
    zk, tk = z[keep], t[keep]
    p = expit(zk)
    ce = -(tk * np.log(p) + (1 - tk) * np.log(1 - p))
    p_t = p * tk + (1 - p) * (1 - tk)
    a_t = 0.25 * tk + 0.75 * (1 - tk)
    expected = (a_t * (1 - p_t) ** 2 * ce).mean()
    assert SigmoidFocal()({"logits": _t(z)}, _t(t)).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("clip", [0.0, 0.05])
def test_asymmetric_closed_form(clip):
    z, t = _ml()
    keep = t != -100
    zk, tk = z[keep], t[keep]
    p = expit(zk)
    p_m = np.maximum(p - clip, 0)
    lp = (1 - p) ** 1.0 * np.log(p)
    ln = p_m**4 * np.log(np.minimum(1 - p_m, 1.0))
    expected = -(tk * lp + (1 - tk) * ln).mean()
    got = Asymmetric(gamma_pos=1.0, gamma_neg=4.0, clip=clip)({"logits": _t(z)}, _t(t)).item()
    assert got == pytest.approx(expected, rel=1e-5)


def test_coral_closed_form():
    z = rng.normal(size=(15, 8))  # 9 ordered levels
    y = rng.integers(0, 9, size=15)
    y[4] = -100
    keep = y != -100
    tasks = (y[keep][:, None] > np.arange(8)).astype(float)
    p = expit(z[keep])
    expected = -(tasks * np.log(p) + (1 - tasks) * np.log(1 - p)).sum(1).mean()
    assert Coral()({"logits": _t(z)}, _t(y, torch.long)).item() == pytest.approx(expected, rel=1e-5)
    assert Coral.predict_levels(torch.tensor([[5.0, 5.0, -5.0]])).item() == 2
    logp = Coral.predictions(torch.tensor([[5.0, 5.0, -5.0]]))
    assert logp.shape == (1, 4) and logp.exp().sum().item() == pytest.approx(1.0) and logp.argmax().item() == 2


def _lm(b=3, t=7, v=11):
    z = rng.normal(size=(b, t, v))
    y = rng.integers(0, v, size=(b, t))
    y[0, 5:] = -100
    y[2, 0] = -100
    return z, y


def test_token_cross_entropy_matches_transformers_causal_lm_loss():
    from transformers.loss.loss_utils import ForCausalLMLoss

    z, y = _lm()
    n = torch.tensor(int((y[:, 1:] != -100).sum()) + 6)  # as if other micro-batches held 6 more tokens
    ours = TokenCrossEntropy()({"logits": _t(z)}, _t(y, torch.long), num_items_in_batch=n)
    theirs = ForCausalLMLoss(_t(z), _t(y, torch.long), vocab_size=11, num_items_in_batch=n)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)


def test_token_label_smoothing_matches_transformers_label_smoother():
    from transformers.trainer_pt_utils import LabelSmoother

    z, y = _lm()
    ours = TokenLabelSmoothing(0.1)({"logits": _t(z)}, _t(y, torch.long))
    theirs = LabelSmoother(epsilon=0.1)({"logits": _t(z)}, _t(y, torch.long), shift_labels=True)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)


def test_z_loss_closed_form_and_components():
    z, y = _lm()
    zs, ys = z[:, :-1].reshape(-1, 11), y[:, 1:].reshape(-1)
    keep = ys != -100
    lse = logsumexp(zs[keep], axis=1)
    ce = (lse - zs[keep][np.arange(keep.sum()), ys[keep]]).mean()
    zterm = (lse**2).mean()
    loss = ZLoss(1e-2)
    got = loss({"logits": _t(z)}, _t(y, torch.long))
    assert got.item() == pytest.approx(ce + 1e-2 * zterm, rel=1e-5)
    assert loss.last_components["ce"].item() == pytest.approx(ce, rel=1e-5)
    assert loss.last_components["z"].item() == pytest.approx(zterm, rel=1e-5)


def test_chunked_cross_entropy_equals_full_logits_in_value_and_gradient():
    torch.manual_seed(0)
    hidden = torch.randn(2, 40, 16, requires_grad=True)
    head = torch.nn.Linear(16, 300, bias=False)
    labels = torch.randint(0, 300, (2, 40))
    labels[1, 30:] = -100
    chunked = ChunkedCrossEntropy(chunk_size=8).bind(head)
    a = chunked({"hidden_states": (hidden,)}, labels, num_items_in_batch=torch.tensor(70))
    ga = torch.autograd.grad(a, [hidden, head.weight])
    b = TokenCrossEntropy()({"logits": head(hidden)}, labels, num_items_in_batch=torch.tensor(70))
    gb = torch.autograd.grad(b, [hidden, head.weight])
    assert a.item() == pytest.approx(b.item(), rel=1e-5)
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y, atol=1e-6, rtol=1e-4)


def test_chunked_cross_entropy_refuses_a_torch_older_than_2_13_in_one_line(monkeypatch):
    from losslab.checks import check_loss_builds
    from losslab.errors import ConfigError

    monkeypatch.setattr(torch, "__version__", "2.5.1")
    with pytest.raises(ConfigError, match=r"^chunked_cross_entropy: needs torch >= 2\.13 .*this is torch 2\.5\.1"):
        ChunkedCrossEntropy()
    cfg = compose(["task=lm", "loss=chunked_cross_entropy"])  # before anything loads: the option named
    with pytest.raises(ConfigError) as refused:
        check_loss_builds(cfg, "chunked_cross_entropy")
    [line] = str(refused.value).splitlines()
    assert line.startswith("loss=chunked_cross_entropy cannot be built") and "needs torch >= 2.13" in line


def test_composite_is_the_weighted_sum_of_its_terms_and_reports_them():
    z, y = _cls()
    out, lab = {"logits": _t(z)}, _t(y, torch.long)
    comp = Composite({"ce": {"loss": CrossEntropy(), "weight": 1.0}, "focal": {"loss": Focal(2.0), "weight": 0.5}})
    n = torch.tensor(50)
    expected = CrossEntropy()(out, lab, n) + 0.5 * Focal(2.0)(out, lab, n)
    assert comp(out, lab, n).item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(comp.last_components) == {"ce", "focal"}
    assert comp.task_kinds == ("single_label", "token_classification")


ALL_IGNORABLE = [
    (CrossEntropy(), (4, 3)), (LabelSmoothing(), (4, 3)), (WeightedCrossEntropy([1, 2, 3]), (4, 3)),
    (Focal(0.5), (4, 3)), (Poly1(), (4, 3)), (MultiMargin(), (4, 3)), (Dice(), (4, 3)),
    (SoftCrossEntropy(), (4, 3)), (Coral(), (4, 3)), (Corn(), (4, 3)),
]


@pytest.mark.parametrize("loss,shape", ALL_IGNORABLE, ids=lambda x: type(x).__name__ if isinstance(x, torch.nn.Module) else "")
def test_every_label_ignored_gives_zero_loss_and_zero_gradient(loss, shape):
    z = torch.randn(*shape, requires_grad=True)
    out = loss({"logits": z}, torch.full(shape[:1], -100), num_items_in_batch=torch.tensor(0))
    out.backward()
    assert out.item() == 0.0 and torch.count_nonzero(z.grad) == 0


@pytest.mark.parametrize("loss", [BCE(), SigmoidFocal(), Asymmetric()], ids=lambda x: type(x).__name__)
def test_multilabel_all_ignored_gives_zero(loss):
    z = torch.randn(3, 4, requires_grad=True)
    out = loss({"logits": z}, torch.full((3, 4), -100.0))
    out.backward()
    assert out.item() == 0.0 and torch.count_nonzero(z.grad) == 0


@pytest.mark.parametrize("loss", [TokenCrossEntropy(), TokenLabelSmoothing(), ZLoss()], ids=lambda x: type(x).__name__)
def test_lm_all_padding_gives_zero(loss):
    z = torch.randn(2, 5, 7, requires_grad=True)
    out = loss({"logits": z}, torch.full((2, 5), -100))
    out.backward()
    assert out.item() == 0.0 and torch.count_nonzero(z.grad) == 0


def test_weight_options_are_validated():
    with pytest.raises(ValueError, match="list of floats or 'balanced'"):
        WeightedCrossEntropy("balancd")
    with pytest.raises(ValueError, match="pos_weight must be"):
        BCE("auto")


# ------------------------------------------------------------------ hinge (Crammer–Singer) vs scikit-learn
from sklearn.metrics import hinge_loss as sk_hinge_loss  # noqa: E402

from losslab.losses import Hinge, SquaredHinge  # noqa: E402


def test_hinge_matches_sklearn_multiclass_crammer_singer():
    z, y = _cls(c=4)
    zk, yk = _kept(z, y)
    got = Hinge()({"logits": _t(z)}, _t(y, torch.long)).item()
    assert got == pytest.approx(sk_hinge_loss(yk, zk, labels=np.arange(4)), rel=1e-5)
    # normalized by the Trainer's count over the whole step, not by this batch's items
    summed = Hinge()({"logits": _t(z)}, _t(y, torch.long), num_items_in_batch=torch.tensor(100.0)).item()
    assert summed == pytest.approx(sk_hinge_loss(yk, zk, labels=np.arange(4)) * len(yk) / 100, rel=1e-5)


def test_hinge_binary_is_sklearns_binary_hinge_on_the_logit_difference():
    z, y = _cls(c=2)
    zk, yk = _kept(z, y)
    assert set(yk) == {0, 1}
    got = Hinge()({"logits": _t(z)}, _t(y, torch.long)).item()
    assert got == pytest.approx(sk_hinge_loss(yk, zk[:, 1] - zk[:, 0]), rel=1e-5)
    # Weston–Watkins (multi_margin) with two classes is the same hinge divided by C = 2
    ww = MultiMargin()({"logits": _t(z)}, _t(y, torch.long)).item()
    assert ww == pytest.approx(got / 2, rel=1e-5)


def test_hinge_is_not_weston_watkins_beyond_two_classes():
    z = _t([[2.0, 1.5, 1.5, -3.0]])
    y = _t([0], torch.long)
    assert Hinge()({"logits": z}, y).item() == pytest.approx(0.5)  # only the best wrong class: 1 − 2 + 1.5
    assert MultiMargin()({"logits": z}, y).item() == pytest.approx((0.5 + 0.5) / 4)  # every wrong class, / C


def test_squared_hinge_is_sklearns_per_item_hinge_squared():
    z, y = _cls(c=5)
    zk, yk = _kept(z, y)
    per_item = np.array([sk_hinge_loss([t], row[None], labels=np.arange(5)) for t, row in zip(yk, zk)])
    got = SquaredHinge()({"logits": _t(z)}, _t(y, torch.long)).item()
    assert got == pytest.approx((per_item**2).mean(), rel=1e-5)
    # binary: Keras' squared_hinge formula max(0, 1 − t·f)² with t = ±1, f = z₁ − z₀
    zb, yb = _kept(*_cls(c=2))
    t = np.where(yb == 1, 1.0, -1.0)
    expected = (np.maximum(0, 1 - t * (zb[:, 1] - zb[:, 0])) ** 2).mean()
    assert SquaredHinge()({"logits": _t(zb)}, _t(yb, torch.long)).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("cls,power", [(Hinge, 1), (SquaredHinge, 2)])
def test_hinge_margin_and_token_shapes_closed_form(cls, power):
    z = rng.normal(size=(3, 5, 4)) * 2  # (batch, tokens, classes), padding -100 ignored
    y = rng.integers(0, 4, size=(3, 5))
    y[0, 3:] = -100
    zk, yk = _kept(z.reshape(-1, 4), y.reshape(-1))
    wrong = np.where(np.eye(4, dtype=bool)[yk], -np.inf, zk).max(1)
    expected = (np.maximum(0, 0.3 - zk[np.arange(len(yk)), yk] + wrong) ** power).mean()
    assert cls(margin=0.3)({"logits": _t(z)}, _t(y, torch.long)).item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="margin must be >= 0"):
        cls(margin=-1)


@pytest.mark.parametrize("loss", [Hinge(), SquaredHinge()], ids=lambda x: type(x).__name__)
def test_hinge_all_ignored_gives_zero_loss_and_zero_gradient(loss):
    z = torch.randn(4, 3, requires_grad=True)
    out = loss({"logits": z}, torch.full((4,), -100), num_items_in_batch=torch.tensor(0))
    out.backward()
    assert out.item() == 0.0 and torch.count_nonzero(z.grad) == 0


# ------------------------------------------------------------------ square loss (Hui & Belkin, ICLR 2021)
from losslab.losses import Square  # noqa: E402


def test_square_is_torch_mse_on_one_hot_targets_and_ignores_padding():
    z = rng.normal(size=(23, 5)) * 2
    y = rng.integers(0, 5, size=23)
    y[[1, 8, 20]] = -100
    keep = y != -100
    onehot = np.eye(5)[y[keep]]
    reference = torch.nn.functional.mse_loss(_t(z[keep]), _t(onehot)).item()  # mean over items and classes
    assert Square()({"logits": _t(z)}, _t(y, torch.long)).item() == pytest.approx(reference, rel=1e-6)
    summed = Square()({"logits": _t(z)}, _t(y, torch.long), num_items_in_batch=torch.tensor(100.0)).item()
    assert summed == pytest.approx(((z[keep] - onehot) ** 2).mean(-1).sum() / 100, rel=1e-6)


@pytest.mark.parametrize("k,M", [(1.0, 15.0), (15.0, 30.0), (2.5, 1.0)])
def test_square_rescaled_closed_form(k, M):
    z = rng.normal(size=(4, 7, 6)) * 3  # token shapes: (batch, tokens, classes)
    y = rng.integers(0, 6, size=(4, 7))
    y[0, :3] = -100
    per_item = []
    for zi, yi in zip(z.reshape(-1, 6), y.reshape(-1)):
        if yi == -100:
            continue
        wrong = sum(zi[c] ** 2 for c in range(6) if c != yi)
        per_item.append((k * (zi[yi] - M) ** 2 + wrong) / 6)
    got = Square(k=k, M=M)({"logits": _t(z)}, _t(y, torch.long)).item()
    assert got == pytest.approx(np.mean(per_item), rel=1e-5)
    # k and M matter: the default loss differs on the same logits
    assert Square()({"logits": _t(z)}, _t(y, torch.long)).item() != pytest.approx(got, rel=1e-3)


def test_square_gradient_pulls_logits_to_zero_and_M():
    z = torch.zeros(1, 3, requires_grad=True)
    Square(k=2.0, M=4.0)({"logits": z}, torch.tensor([1])).backward()
    # d/dz_y (1/3)·2·(z_y − 4)² = (4/3)(z_y − 4) = −16/3; the wrong classes sit at their target 0
    torch.testing.assert_close(z.grad, torch.tensor([[0.0, -16.0 / 3, 0.0]]))


def test_square_all_ignored_gives_zero_and_bad_knobs_are_refused():
    z = torch.randn(4, 3, requires_grad=True)
    out = Square()({"logits": z}, torch.full((4,), -100), num_items_in_batch=torch.tensor(0))
    out.backward()
    assert out.item() == 0.0 and torch.count_nonzero(z.grad) == 0
    with pytest.raises(ValueError, match="k .* must be > 0"):
        Square(k=0)
    with pytest.raises(ValueError, match="M .* must be > 0"):
        Square(M=-1)
    with pytest.raises(ValueError, match="integer class ids"):
        Square()({"logits": z}, torch.rand(4, 3))
