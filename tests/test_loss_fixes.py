"""Regression tests for issue #30 (dice at saturation, balanced class weights with absent classes, ASL's detached
focusing weight) and issue #32 (dice over the batch, as the authors' NER scripts run it).

Each is checked against an independent reference: the naive formula (where it is finite) and float64 autograd,
scikit-learn's ``compute_class_weight``, NumPy transcriptions of the authors' formulas, and a re-implementation of
ASL with the weight computed under ``torch.no_grad()``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import compose
from hydra.utils import instantiate
from scipy.special import expit, softmax
from sklearn.utils.class_weight import compute_class_weight

from losslab.losses import Asymmetric, Composite, CrossEntropy, Dice, Focal, MultiMargin, WeightedCrossEntropy
from losslab.losses.base import class_weights_balanced, fit_to_train


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)
    yield


# ------------------------------------------------------------------ dice: finite at saturation (issue #30)

MARGINS = np.arange(0, 101, dtype=float)  # 0..100


def _saturating_logits():
    """Rows of 3 logits with margins 0..100, two layouts; labels: the top class (a confident right item) and
    another class (a confident wrong item)."""
    rows, labels = [], []
    for m in MARGINS:
        for z, y in (([m, 0.0, 0.0], 0), ([m, 0.0, 0.0], 1), ([m, m / 2, -m], 2), ([0.0, -m, m], 2)):
            rows.append(z)
            labels.append(y)
    return np.array(rows), np.array(labels)


def _naive_dice_items(z: torch.Tensor, y: torch.Tensor, alpha, gamma=1.0, square=False):
    """The docstring's formula, written plainly: (1 − p)^α p from softmax, per item (NaN-prone at saturation)."""
    p = torch.softmax(z, -1)
    t = torch.nn.functional.one_hot(y, z.size(-1)).to(p.dtype)
    w = (1 - p) ** alpha * p
    return (1 - (2 * w * t + gamma) / ((w * w if square else w) + t + gamma)).mean(-1)


def _float64_dice_items(z: torch.Tensor, y: torch.Tensor, alpha, gamma=1.0):
    """The same formula in float64 with 1 − p_c written as the sum of the other classes' probabilities (each
    ``exp(z_k − lse)``): accurate at every margin here (e^-100 is far from float64's underflow), no log-sum-exp
    of the other logits (the trick under test)."""
    p = torch.softmax(z.double(), -1)
    one_minus = torch.stack([p[:, [k for k in range(p.size(1)) if k != c]].sum(1) for c in range(p.size(1))], 1)
    t = torch.nn.functional.one_hot(y, z.size(-1)).double()
    w = one_minus**alpha * p
    return (1 - (2 * w * t + gamma) / (w + t + gamma)).mean(-1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("alpha", [0.01, 0.1, 0.5, 1.0])
def test_dice_is_finite_at_saturation_and_equals_the_naive_formula_where_that_is_finite(alpha, dtype):
    z_np, y_np = _saturating_logits()
    z = torch.tensor(z_np, dtype=dtype, requires_grad=True)
    y = torch.tensor(y_np)
    loss = Dice(alpha=alpha, gamma=1.0)
    total = loss({"logits": z}, y, num_items_in_batch=torch.tensor(1.0))  # the sum over items
    total.backward()
    assert torch.isfinite(total)
    assert torch.isfinite(z.grad).all(), f"non-finite gradient rows: {torch.nonzero(~torch.isfinite(z.grad))[:5]}"

    zf = z.detach().float()  # what the loss computes in: flatten() casts to fp32
    ours = torch.stack([loss({"logits": zf[i:i + 1]}, y[i:i + 1]) for i in range(len(y))]).double()
    # 1. the naive formula, in float64, where it is finite and 1 − p has not lost its digits (margin <= 20:
    #    1 − p >= 2e-9, float64's relative error there <= 1e-7). In fp32 the naive value is finite but wrong
    #    once 1 − p rounds to 0 (margin >= 17): 0^α = 0 instead of e^(−α·margin), off by up to 0.15 at α = 0.01.
    naive = _naive_dice_items(zf.double(), y, alpha)
    near = torch.tensor(np.repeat(MARGINS <= 20, 4)) & torch.isfinite(naive)
    assert near.sum() == 21 * 4
    torch.testing.assert_close(ours[near], naive[near], rtol=1e-5, atol=0)
    # 2. every margin 0..100 against the float64 formula with 1 − p as a sum of probabilities
    torch.testing.assert_close(ours, _float64_dice_items(zf, y, alpha), rtol=1e-5, atol=0)
    # 3. the gradient against float64 autograd of that formula
    z64 = zf.double().requires_grad_(True)
    _float64_dice_items(z64, y, alpha).sum().backward()
    assert torch.isfinite(z64.grad).all()
    zg = zf.clone().requires_grad_(True)
    loss({"logits": zg}, y, num_items_in_batch=torch.tensor(1.0)).backward()
    torch.testing.assert_close(zg.grad.double(), z64.grad, rtol=1e-3, atol=1e-7)


def test_dice_issue_example_no_longer_nan():
    z = torch.tensor([[20.0, 0, 0]], requires_grad=True)
    naive = torch.tensor([[20.0, 0, 0]], requires_grad=True)
    _naive_dice_items(naive, torch.tensor([0]), 0.5).sum().backward()
    assert not torch.isfinite(naive.grad).all()  # the bug, in the naive formula
    Dice(alpha=0.5, gamma=1.0)(torch.tensor([[20.0, 0, 0]]), torch.tensor([0]))
    out = Dice(alpha=0.5, gamma=1.0)({"logits": z}, torch.tensor([0]))
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(z.grad).all()


def test_dice_with_alpha_one_scores_a_confident_right_and_a_confident_wrong_tag_the_same():
    right = Dice()({"logits": torch.tensor([[50.0, 0.0, 0.0]])}, torch.tensor([0])).item()
    wrong = Dice()({"logits": torch.tensor([[50.0, 0.0, 0.0]])}, torch.tensor([1])).item()
    assert right == pytest.approx(1 / 6, rel=1e-6) and wrong == pytest.approx(1 / 6, rel=1e-6)  # 1/(2C), γ = 1
    # the batch form does not: its (almost plain) dice sees the wrong tag
    batch = Dice(reduction="batch", square_denominator=True, alpha=0.01)
    assert batch({"logits": torch.tensor([[50.0, 0.0, 0.0]])}, torch.tensor([1])).item() > \
        batch({"logits": torch.tensor([[50.0, 0.0, 0.0]])}, torch.tensor([0])).item() + 0.2  # 0.257 vs 0.021


def test_dice_square_denominator_per_item_closed_form():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(20, 4)) * 2
    y = rng.integers(0, 4, size=20)
    y[[2, 9]] = -100
    keep = y != -100
    p = softmax(z[keep], axis=1)
    t = np.eye(4)[y[keep]]
    w = (1 - p) ** 0.3 * p
    expected = (1 - (2 * w * t + 0.5) / (w**2 + t**2 + 0.5)).mean(1).mean()
    got = Dice(alpha=0.3, gamma=0.5, square_denominator=True)({"logits": torch.tensor(z)}, torch.tensor(y))
    assert got.item() == pytest.approx(expected, rel=1e-5)


# ------------------------------------------------------------------ dice over the batch (issue #32)

def _batch_dice_np(z, y, alpha, smooth, square=True):
    """losslab's documented batch form in float64 NumPy: per class, sums over the kept items; mean over classes."""
    keep = y != -100
    p = softmax(z[keep], axis=1)
    t = np.eye(z.shape[1])[y[keep]]
    w = (1 - p) ** alpha * p
    den = ((w**2).sum(0) if square else w.sum(0)) + t.sum(0) + smooth
    return (1 - (2 * (w * t).sum(0) + smooth) / den).mean()


def _authors_binary_dice(x, target, alpha, smooth):
    """ShannonAI/dice_loss_for_NLP ``DiceLoss._binary_class`` + ``_compute_dice_loss`` with
    ``square_denominator=True``, ``ohem_ratio=0``, no mask (as tasks/mrc_ner/train.py), in NumPy."""
    flat_input = expit(np.ravel(x))
    flat_target = np.ravel(target).astype(float)
    flat_input = ((1 - flat_input) ** alpha) * flat_input
    intersection = np.sum(flat_input * flat_target, -1)
    return 1 - ((2 * intersection + smooth) / (np.sum(flat_input**2, -1) + np.sum(flat_target**2, -1) + smooth))


def _authors_multiclass_dice(z, y, alpha, smooth):
    """Their ``_multiple_class`` (``index_label_position=True``, square denominator, no ohem, reduction mean):
    each class's input is ``(N, 1)``, so its sums over the last axis are per item; the classes are summed."""
    flat_input = softmax(z, axis=1)
    flat_target = np.eye(z.shape[1])[y]
    loss = 0.0
    for c in range(z.shape[1]):
        fi = flat_input[:, c].reshape(-1, 1)
        ft = flat_target[:, c].reshape(-1, 1)
        fi = ((1 - fi) ** alpha) * fi
        inter = np.sum(fi * ft, -1)
        loss = loss + 1 - ((2 * inter + smooth) / (np.sum(fi**2, -1) + np.sum(ft**2, -1) + smooth))
    return loss.mean()


def test_dice_batch_matches_its_closed_form_and_the_normalization_contract():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(3, 7, 5)) * 2  # token shapes
    y = rng.integers(0, 5, size=(3, 7))
    y[0, 4:] = -100
    y[2, 0] = -100
    n = int((y != -100).sum())
    loss = Dice(reduction="batch", square_denominator=True, smooth=1.0, alpha=0.01)
    expected = _batch_dice_np(z.reshape(-1, 5), y.reshape(-1), 0.01, 1.0)
    assert loss({"logits": torch.tensor(z)}, torch.tensor(y)).item() == pytest.approx(expected, rel=1e-5)
    got = loss({"logits": torch.tensor(z)}, torch.tensor(y), num_items_in_batch=torch.tensor(50.0))
    assert got.item() == pytest.approx(n * expected / 50, rel=1e-5)
    not_squared = Dice(reduction="batch", alpha=0.3, gamma=0.5)({"logits": torch.tensor(z)}, torch.tensor(y))
    assert not_squared.item() == pytest.approx(
        _batch_dice_np(z.reshape(-1, 5), y.reshape(-1), 0.3, 0.5, square=False), rel=1e-5)


def test_dice_batch_with_two_classes_is_the_mean_of_the_authors_binary_dice_per_class():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(40, 2)) * 3
    y = (rng.random(40) < 0.15).astype(int)  # rare positives, as start/end tags
    got = Dice(reduction="batch", square_denominator=True, smooth=1.0, alpha=0.01)(
        {"logits": torch.tensor(z)}, torch.tensor(y)).item()
    positive = _authors_binary_dice(z[:, 1] - z[:, 0], y, 0.01, 1.0)
    negative = _authors_binary_dice(z[:, 0] - z[:, 1], 1 - y, 0.01, 1.0)
    assert got == pytest.approx((positive + negative) / 2, rel=1e-5)


def test_dice_per_item_squared_is_the_authors_multiclass_path_divided_by_C():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(25, 4)) * 2
    y = rng.integers(0, 4, size=25)
    got = Dice(alpha=0.01, smooth=1.0, square_denominator=True)({"logits": torch.tensor(z)}, torch.tensor(y)).item()
    assert got * 4 == pytest.approx(_authors_multiclass_dice(z, y, 0.01, 1.0), rel=1e-5)


def _naive_batch_dice_torch(z, y, alpha, smooth):
    """An independent torch version of the batch dice (naive (1 − p)^α; fine away from saturation)."""
    keep = y != -100
    p = torch.softmax(z[keep], -1)
    t = torch.nn.functional.one_hot(y[keep], z.size(-1)).to(p.dtype)
    w = (1 - p) ** alpha * p
    return (1 - (2 * (w * t).sum(0) + smooth) / ((w * w).sum(0) + t.sum(0) + smooth)).mean()


@pytest.mark.parametrize("k", [2, 4])
def test_dice_batch_under_accumulation_is_the_item_weighted_mean_of_micro_batch_dice(k):
    """What the docstring says: k micro-batches give Σ_j n_j/N · ∇D(micro-batch j), not ∇D(whole batch)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 6, 8, generator=g)  # 16 sequences of 6 tokens
    y = torch.randint(0, 4, (16, 6), generator=g).masked_fill(torch.rand(16, 6, generator=g) < 0.3, -100)
    weight = torch.randn(4, 8, generator=g, requires_grad=True)
    loss = Dice(reduction="batch", square_denominator=True, smooth=1.0, alpha=0.01)
    n_total = y.ne(-100).sum()

    def accumulated(micro):
        weight.grad = None
        for xs, ys in zip(x.chunk(micro), y.chunk(micro)):
            loss({"logits": xs @ weight.T}, ys, num_items_in_batch=n_total).backward()
        return weight.grad.clone()

    reference = torch.zeros_like(weight)
    for xs, ys in zip(x.chunk(k), y.chunk(k)):
        w_ref = weight.detach().clone().requires_grad_(True)
        d = _naive_batch_dice_torch(xs @ w_ref.T, ys, 0.01, 1.0)
        d.backward()
        reference += ys.ne(-100).sum() / n_total * w_ref.grad
    assert len({int(ys.ne(-100).sum()) for ys in y.chunk(k)}) > 1  # unequal micro-batches: the weighting matters
    torch.testing.assert_close(accumulated(k), reference, rtol=1e-5, atol=1e-7)

    # one micro-batch is the dice of the whole batch; k micro-batches are not (documented, not a bug)
    w_full = weight.detach().clone().requires_grad_(True)
    _naive_batch_dice_torch(x @ w_full.T, y, 0.01, 1.0).backward()
    full = accumulated(1)
    torch.testing.assert_close(full, w_full.grad, rtol=1e-5, atol=1e-7)
    assert (accumulated(k) - full).abs().max() > 1e-3 * full.abs().max()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_dice_batch_is_finite_at_saturation_and_zero_when_all_ignored(dtype):
    z_np, y_np = _saturating_logits()
    for alpha in (0.01, 0.5, 1.0):
        z = torch.tensor(z_np, dtype=dtype, requires_grad=True)
        out = Dice(reduction="batch", square_denominator=True, alpha=alpha)({"logits": z}, torch.tensor(y_np))
        out.backward()
        assert torch.isfinite(out) and torch.isfinite(z.grad).all()
    z = torch.randn(4, 3, requires_grad=True)
    out = Dice(reduction="batch")({"logits": z}, torch.full((4,), -100), num_items_in_batch=torch.tensor(0))
    out.backward()
    assert out.item() == 0.0 and torch.count_nonzero(z.grad) == 0


def test_dice_options_are_validated_and_dice_batch_composes():
    with pytest.raises(ValueError, match="reduction"):
        Dice(reduction="mean")
    with pytest.raises(ValueError, match="another name for gamma"):
        Dice(gamma=0.5, smooth=2.0)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        Dice(alpha=0)
    assert Dice(smooth=2.0).gamma == 2.0
    loss = instantiate(compose(["loss=dice_batch"]).loss)
    assert (loss.reduction, loss.alpha, loss.gamma, loss.square_denominator) == ("batch", 0.01, 1.0, True)
    assert instantiate(compose(["loss=dice"]).loss).reduction == "item"


# ------------------------------------------------------------------ balanced class weights (issue #30)

CASES = {
    "all present": np.array([0] * 50 + [1] * 30 + [2] * 12 + [3] * 5 + [4] * 3),
    "highest absent": np.array([0] * 50 + [1] * 30 + [2] * 12 + [3] * 8),
    "middle absent": np.array([0] * 50 + [1] * 30 + [3] * 12 + [4] * 8),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("pass_num_classes", [True, False], ids=["num_classes", "inferred"])
def test_balanced_weights_match_sklearn_on_present_classes_with_mean_one(case, pass_num_classes):
    y = np.random.default_rng(5).permutation(CASES[case])
    present = np.unique(y)
    absent = sorted(set(range(5)) - set(present))
    sk = compute_class_weight("balanced", classes=present, y=y)
    loss = WeightedCrossEntropy("balanced")
    logged = loss.fit(y, num_classes=5) if pass_num_classes else loss.fit(y)
    w = loss.weight_tensor(torch.zeros(1, 5, dtype=torch.float64)).numpy()  # the weights a 5-class head trains with
    assert len(w) == 5
    np.testing.assert_allclose(w[present], sk, rtol=1e-12)  # the documented scale is exactly sklearn's
    np.testing.assert_allclose(w[absent], np.full(len(absent), sk.mean()), rtol=1e-12)
    assert np.mean(w[y]) == pytest.approx(1.0, rel=1e-12)  # mean weight over the training items
    if pass_num_classes:
        assert logged == {f"class_weight.{c}": pytest.approx(w[c]) for c in range(5)}
    # and the loss: −w_y log p_y summed, divided by the item count
    z = torch.randn(12, 5, dtype=torch.float64)
    yy = torch.tensor([0, 1, 2, 3, 4, 4, 3, 2, 1, 0, 4, -100])
    keep = yy != -100
    nll = -torch.log_softmax(z[keep], -1).gather(1, yy[keep, None])[:, 0]
    got = loss({"logits": z}, yy)
    assert got.item() == pytest.approx((torch.tensor(w)[yy[keep]] * nll).sum().item() / keep.sum().item(), rel=1e-6)


def test_balanced_weights_for_every_loss_that_takes_them_with_the_highest_class_absent():
    y = CASES["highest absent"]
    z, yy = torch.randn(6, 5), torch.tensor([0, 1, 2, 3, 4, -100])
    for loss in (WeightedCrossEntropy("balanced"), Focal(alpha="balanced"), MultiMargin(weights="balanced")):
        loss.fit(y)
        assert torch.isfinite(loss({"logits": z}, yy)), type(loss).__name__
    # token labels: one list per sequence, -100 for padding and sub-words
    loss = WeightedCrossEntropy("balanced")
    loss.fit([[0, -100, 1, 1], [3, 3, -100], [0]], num_classes=5)
    assert len(loss.weights) == 5 and loss.weights[2] == loss.weights[4]
    assert np.mean([loss.weights[c] for c in (0, 1, 1, 3, 3, 0)]) == pytest.approx(1.0)


def test_balanced_weights_refuse_a_label_beyond_the_class_count_and_keep_list_weights_strict():
    with pytest.raises(ValueError, match="class count"):
        WeightedCrossEntropy("balanced").fit([0, 1, 5], num_classes=3)
    with pytest.raises(ValueError, match="3 class weights for 5 classes"):
        WeightedCrossEntropy([1.0, 2.0, 3.0])({"logits": torch.randn(2, 5)}, torch.tensor([0, 1]))
    assert class_weights_balanced([0, 0]) == [1.0, 1.0]  # no training item: plain weights


def test_fit_passes_the_class_count_through_composite_and_to_fits_that_take_it():
    comp = Composite({"wce": {"loss": WeightedCrossEntropy("balanced")}, "ce": {"loss": CrossEntropy()}})
    fitted = fit_to_train(comp, CASES["highest absent"], num_classes=5)
    assert set(fitted) == {f"wce.class_weight.{c}" for c in range(5)}

    class UserLoss(torch.nn.Module):  # a user's fit without num_classes still works
        needs_train_labels = True

        def fit(self, train_labels):
            return {"seen": float(len(train_labels))}

    assert fit_to_train(UserLoss(), [0, 1, 1], num_classes=3) == {"seen": 3.0}
    assert fit_to_train(CrossEntropy(), [0, 1], num_classes=2) == {}


# ------------------------------------------------------------------ ASL: detached focusing weight (issue #30)

def _asl_reference(z, t, gamma_pos, gamma_neg, clip, detach):
    """ASL re-implemented from the paper's formula, with the weight under torch.no_grad() when ``detach``
    (as Alibaba-MIIL/ASL's AsymmetricLoss with disable_torch_grad_focal_loss=True); mean over kept elements."""
    keep = t != -100
    z, t = z[keep], t[keep]
    p = torch.sigmoid(z)
    p_neg = (1 - p + clip).clamp(max=1) if clip > 0 else 1 - p
    log_terms = t * torch.log(p) + (1 - t) * torch.log(p_neg)

    def weight():
        pt = p * t + p_neg * (1 - t)
        return torch.pow(1 - pt, gamma_pos * t + gamma_neg * (1 - t))

    if detach:
        with torch.no_grad():
            w = weight()
    else:
        w = weight()
    return -(log_terms * w).sum() / t.numel()


@pytest.mark.parametrize("gammas", [(0.0, 4.0), (1.0, 4.0), (2.0, 3.0)])
@pytest.mark.parametrize("clip", [0.0, 0.05])
def test_asymmetric_detached_focal_weight_matches_a_no_grad_reference(gammas, clip):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(12, 5, generator=g) * 2  # fp32: the loss computes in fp32
    t = torch.randint(0, 2, (12, 5), generator=g).float()
    t[1, 2] = -100
    grads = {}
    for detach in (False, True):
        ours_z = z.clone().requires_grad_(True)
        ref_z = z.clone().requires_grad_(True)
        ours = Asymmetric(*gammas, clip=clip, detach_focal_weight=detach)({"logits": ours_z}, t)
        ref = _asl_reference(ref_z, t, *gammas, clip, detach)
        ours.backward()
        ref.backward()
        assert ours.item() == pytest.approx(ref.item(), rel=1e-6)
        torch.testing.assert_close(ours_z.grad, ref_z.grad, rtol=1e-5, atol=1e-7)
        grads[detach] = ours_z.grad
    assert (grads[True] - grads[False]).abs().max() > 1e-3  # detaching changes the gradient, not the value


def test_asymmetric_default_keeps_the_gradient_and_the_option_composes():
    assert Asymmetric().detach_focal_weight is False
    loss = instantiate(compose(["loss=asymmetric", "+loss.detach_focal_weight=true"]).loss)
    assert loss.detach_focal_weight is True


def test_only_the_batch_dice_declares_itself_not_exact_under_accumulation():
    assert Dice(reduction="batch").exact_under_accumulation is False
    assert Dice().exact_under_accumulation is True
    assert all(getattr(loss, "exact_under_accumulation", True)
               for loss in (CrossEntropy(), WeightedCrossEntropy(), Focal(), MultiMargin(), Asymmetric()))
