"""CORAL and CORN (issue #32): against coral_pytorch (the papers' authors' package), the head a loss brings
(built, saved and reloaded the ways the Trainer does), and the level each loss decodes, used alike by the
ratings suite, the report's resampled metrics and its degenerate check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import compose, run_train, runs
from hydra.utils import instantiate

coral_pytorch = pytest.importorskip("coral_pytorch")  # the test extra (pyproject.toml)
from coral_pytorch.dataset import corn_label_from_logits, levels_from_labelbatch, proba_to_label  # noqa: E402
from coral_pytorch.layers import CoralLayer as TheirCoralLayer  # noqa: E402
from coral_pytorch.losses import coral_loss, corn_loss  # noqa: E402

from losslab import models  # noqa: E402
from losslab.losses import Coral, Corn  # noqa: E402
from losslab.losses.base import fit_to_train  # noqa: E402
from losslab.losses.ordinal import CoralLayer  # noqa: E402

K = 9  # rating_dist's levels


def _batch(n=40, k=K, seed=0, ignore=(5, 17)):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, k - 1, generator=g) * 3
    y = torch.randint(0, k, (n,), generator=g)
    y[: k] = torch.arange(k)  # every level, the two ends included
    y[list(ignore)] = -100
    return z, y


# ------------------------------------------------------------------------------------------ against coral_pytorch
def test_coral_layer_is_coral_pytorchs():
    torch.manual_seed(7)
    ours = CoralLayer(32, K - 1)
    torch.manual_seed(7)
    theirs = TheirCoralLayer(32, K)
    assert set(ours.state_dict()) == set(theirs.state_dict()) == {"coral_weights.weight", "coral_bias"}
    for name, value in theirs.state_dict().items():  # same names, shapes and initialization
        torch.testing.assert_close(ours.state_dict()[name], value, rtol=0, atol=0)
    theirs.load_state_dict({k: torch.randn_like(v) for k, v in theirs.state_dict().items()})  # any weights
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(16, 32)
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)
    # one weight vector shared by the K - 1 tasks: the logits of two tasks differ by a constant (their biases)
    z = ours(x)
    torch.testing.assert_close(z[:, 0] - z[:, 3], (ours.coral_bias[0] - ours.coral_bias[3]).expand(16))


def test_coral_loss_is_coral_pytorchs():
    z, y = _batch()
    keep = y != -100
    levels = levels_from_labelbatch(y[keep].tolist(), num_classes=K)
    expected = coral_loss(z[keep], levels)  # their mean over items
    assert Coral()({"logits": z}, y).item() == pytest.approx(expected.item(), rel=1e-6)
    # under accumulation: the step's items count (their sum / that count, not a micro-batch mean)
    n = torch.tensor(100.0)
    got = Coral()({"logits": z}, y, num_items_in_batch=n)
    assert got.item() == pytest.approx((coral_loss(z[keep], levels, reduction="sum") / n).item(), rel=1e-6)
    # and the same gradient
    a, b = z.clone().requires_grad_(), z.clone().requires_grad_()
    Coral()({"logits": a}, y).backward()
    coral_loss(b[keep], levels).backward()
    torch.testing.assert_close(a.grad, b.grad)


def test_corn_loss_is_coral_pytorchs_up_to_its_normalization():
    z, y = _batch(seed=1)
    keep = y != -100
    items = int(keep.sum())
    pairs = sum(int((y[keep] > k - 1).sum()) for k in range(K - 1))  # (item, task) pairs: corn_loss's divisor
    theirs = corn_loss(z[keep], y[keep], num_classes=K)
    ours = Corn()({"logits": z}, y)
    assert ours.item() == pytest.approx(theirs.item() * pairs / items, rel=1e-6)
    # a batch of one level-0 item: task 0 only
    one = torch.tensor([[0.3, 2.0, -1.0]])
    assert Corn()({"logits": one}, torch.tensor([0])).item() == pytest.approx(
        float(torch.nn.functional.softplus(torch.tensor(0.3))), rel=1e-6)
    assert corn_loss(one, torch.tensor([0]), num_classes=4).item() == pytest.approx(
        float(torch.nn.functional.softplus(torch.tensor(0.3))), rel=1e-6)


def test_corn_closed_form():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(25, K - 1)) * 2
    y = rng.integers(0, K, size=25)
    total = 0.0
    for zi, yi in zip(z, y):
        for k in range(min(yi, K - 2) + 1):  # the tasks an item of level yi is in: k <= yi
            p = 1 / (1 + np.exp(-zi[k]))
            total -= np.log(p) if yi > k else np.log(1 - p)
    got = Corn()({"logits": torch.tensor(z, dtype=torch.float32)}, torch.tensor(y))
    assert got.item() == pytest.approx(total / 25, rel=1e-5)


def test_levels_are_coral_pytorchs():
    z, _ = _batch(n=500, seed=2)
    z[:20] = z[:20] * 1e-3  # near the 0.5 boundary
    assert torch.equal(Coral.predict_levels(z), proba_to_label(torch.sigmoid(z)))
    assert torch.equal(Corn.predict_levels(z), corn_label_from_logits(z))
    # their docstrings' examples
    probas = torch.tensor([[0.934, 0.861, 0.323, 0.492, 0.295], [0.496, 0.485, 0.267, 0.124, 0.058],
                           [0.985, 0.967, 0.920, 0.819, 0.506]])
    assert Coral.predict_levels(torch.logit(probas)).tolist() == [2, 0, 5]
    logits = torch.tensor([[14.152, -6.1942, 0.47710, 0.96850], [65.667, 0.303, 11.500, -4.524]])
    assert Corn.predict_levels(logits).tolist() == [1, 3]


def test_level_probabilities():
    z, _ = _batch(n=200, seed=3)
    for loss in (Coral, Corn):
        logp = loss.predictions(z)
        assert logp.shape == (200, K)
        torch.testing.assert_close(logp.exp().sum(-1), torch.ones(200))
    # CORN's P(level > k) falls with k whatever the weights: its level probabilities need no clipping, and the
    # median of that distribution is the predicted level
    p_gt = torch.cumprod(torch.sigmoid(z), -1)
    cdf = Corn.predictions(z).exp().cumsum(-1)
    torch.testing.assert_close(1 - cdf[:, :-1], p_gt, atol=1e-5, rtol=0)
    median = (cdf < 0.5).sum(-1)
    torch.testing.assert_close(median, Corn.predict_levels(z))


# ------------------------------------------------------------------------------------------ the head a loss brings
def _tiny(loss_name, overrides=()):
    cfg = compose(["task=rating_dist", f"loss={loss_name}", "model=tiny", *overrides])
    loss = instantiate(cfg.loss)
    model, tok = models.build(cfg.model, cfg.task, width=models.head_width(loss, cfg.task), loss=loss)
    return cfg, loss, model.eval(), tok


def _inputs(tok):
    return tok(["a fine day", "the worst film ever", "meh", "I love it"], padding=True, return_tensors="pt")


def test_coral_builds_corals_head_in_place_of_the_classifiers_last_layer():
    cfg, loss, model, tok = _tiny("coral")
    assert isinstance(model.classifier, CoralLayer) and model.classifier.out_features == K - 1
    assert isinstance(model.dropout, torch.nn.Dropout) and model.bert.pooler is not None  # the rest is kept
    names = [n for n, _ in model.named_parameters()]
    assert [n for n in names if n.startswith("classifier")] == ["classifier.coral_bias",
                                                                "classifier.coral_weights.weight"]
    batch = _inputs(tok)
    with torch.no_grad():
        pooled = model.bert(**batch).pooler_output
        theirs = TheirCoralLayer(pooled.size(-1), K)
        theirs.load_state_dict(model.classifier.state_dict())
        torch.testing.assert_close(model(**batch).logits, theirs(pooled))
    # corn and every other loss keep the plain linear head
    _, _, plain, _ = _tiny("corn")
    assert isinstance(plain.classifier, torch.nn.Linear) and plain.classifier.out_features == K - 1
    _, _, plain, _ = _tiny("soft_cross_entropy")
    assert isinstance(plain.classifier, torch.nn.Linear) and plain.classifier.out_features == K


def test_coral_head_on_a_pretrained_model_keeps_its_encoder():
    cfg = compose(["task=rating_dist", "loss=coral", "model=minilm"])
    loss = instantiate(cfg.loss)
    coral, _ = models.build(cfg.model, cfg.task, width=K - 1, loss=loss)
    plain, _ = models.build(cfg.model, cfg.task, width=K - 1)
    theirs = plain.state_dict()
    for name, value in coral.state_dict().items():
        if not name.startswith("classifier."):
            torch.testing.assert_close(value, theirs[name], rtol=0, atol=0, msg=name)
    assert isinstance(coral.classifier, CoralLayer)


def test_save_pretrained_and_build_again_from_the_folder(tmp_path):
    torch.manual_seed(1)
    cfg, loss, model, tok = _tiny("coral")
    with torch.no_grad():
        model.classifier.coral_bias.copy_(torch.linspace(2, -2, K - 1))  # not the initial values
    model.save_pretrained(tmp_path / "saved")
    tok.save_pretrained(tmp_path / "saved")
    again_cfg = compose(["task=rating_dist", "loss=coral", "model=minilm", f"model.name_or_path={tmp_path / 'saved'}"])
    torch.manual_seed(2)  # a fresh layer would start elsewhere
    again, _ = models.build(again_cfg.model, again_cfg.task, width=K - 1, loss=instantiate(again_cfg.loss))
    again.eval()
    assert isinstance(again.classifier, CoralLayer)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(again.state_dict()[name], value, rtol=0, atol=0, msg=name)
    batch = _inputs(tok)
    with torch.no_grad():
        torch.testing.assert_close(again(**batch).logits, model(**batch).logits)


def test_the_trainers_best_checkpoint_reload_and_resume_load_the_coral_head(tmp_path):
    from transformers import Trainer, TrainingArguments

    torch.manual_seed(1)
    _, _, best, tok = _tiny("coral")
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    Trainer(model=best, args=args).save_model(str(tmp_path / "checkpoint-3"))
    for load in ("best", "resume"):
        torch.manual_seed(2)
        _, _, model, _ = _tiny("coral")
        trainer = Trainer(model=model, args=args)
        results = []
        trainer._issue_warnings_after_load = results.append
        if load == "best":
            trainer.state.best_model_checkpoint = str(tmp_path / "checkpoint-3")
            trainer._load_best_model()
        else:
            trainer._load_from_checkpoint(str(tmp_path / "checkpoint-3"))
        [result] = results
        assert not result.missing_keys and not result.unexpected_keys, load
        for name, value in best.state_dict().items():
            torch.testing.assert_close(model.state_dict()[name], value, rtol=0, atol=0, msg=f"{load}: {name}")


# ------------------------------------------------------------------------------------------ the level each decodes
def _distributions(levels, k=K):
    t = np.zeros((len(levels), k))
    t[np.arange(len(levels)), levels] = 1.0
    return t


def test_the_ratings_suite_the_report_and_the_degenerate_check_use_the_losss_levels():
    from losslab import metrics
    from losslab.report import flags, items
    from losslab.tasks.labels import LevelsFromDistribution

    rng = np.random.default_rng(0)
    z = torch.tensor(rng.normal(size=(60, K - 1)) * 2 + np.linspace(3, -3, K - 1), dtype=torch.float32)
    truth = rng.integers(0, K, 60)
    labels = _distributions(truth)
    suite = metrics.get("ratings")
    for loss in (Coral(), Corn()):
        wrapped = LevelsFromDistribution(loss, K)  # rating_dist's labels are distributions
        reduce = suite.preprocess_logits(wrapped)
        rows = reduce(z, torch.tensor(labels)).numpy()
        assert rows.shape == (60, K + 1)
        level = type(loss).predict_levels(z).numpy()
        np.testing.assert_array_equal(rows[:, -1], level)
        argmax = rows[:, :K].argmax(1)
        assert (argmax != level).any(), "the case must tell the two decodings apart"
        got = metrics.load("ratings").compute(predictions=rows, references=labels)
        assert got["level_mae"] == pytest.approx(np.abs(level - truth).mean())
        assert got["accuracy"] == pytest.approx((level == truth).mean())
        kept_only = metrics.load("ratings").compute(predictions=rows[:, :K], references=labels)
        assert kept_only["kl"] == pytest.approx(got["kl"]) and kept_only["log_loss"] == pytest.approx(got["log_loss"])
        assert kept_only["level_mae"] == pytest.approx(np.abs(argmax - truth).mean())  # K values: the argmax
        resampled = items.replicates("ratings", rows, labels, np.ones((1, 60)))
        for name, value in got.items():
            assert resampled[name][0] == pytest.approx(value, rel=1e-9), name
    # degenerate: judged on the loss's level, not on the argmax of its level probabilities
    rows = np.concatenate([np.tile([0.0] * (K - 1) + [5.0], (60, 1)), truth[:, None].astype(float)], axis=1)
    assert flags.degenerate("ratings", rows, labels) is None  # argmax always level 8, the levels are right
    rows[:, -1] = 4
    assert flags.degenerate("ratings", rows, labels) == "predicts 4 for every item"
    # a loss without its own decoding keeps its rows as before
    from losslab.losses import SoftCrossEntropy

    assert suite.preprocess_logits(SoftCrossEntropy()) is getattr(SoftCrossEntropy(), "predictions", None)


@pytest.mark.slow  # trains the tiny model (debug=quick) three times
@pytest.mark.parametrize("loss", ["coral", "coral_prior", "corn"])
def test_rating_dist_keeps_the_losss_levels_end_to_end(tmp_path, loss):
    from losslab import predictions

    out = run_train(["task=rating_dist", f"loss={loss}", "debug=quick"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "missing keys" not in out.stderr and "unexpected keys" not in out.stderr  # the best checkpoint reloaded
    [run] = runs(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    _, preds, labels = predictions.download(uri, run.info.run_id, "test", str(tmp_path / "dl"))
    assert preds.shape[1] == K + 1 and np.all(preds[:, -1] == np.rint(preds[:, -1]))
    assert np.all((preds[:, -1] >= 0) & (preds[:, -1] <= K - 1))
    truth = np.floor((labels * np.arange(K)).sum(1) + 0.5)
    assert run.data.metrics["test_level_mae"] == pytest.approx(np.abs(preds[:, -1] - truth).mean(), rel=1e-6)
    fitted = sorted(k for k in run.data.params if k.startswith("loss.fitted.coral_bias."))
    assert fitted == ([f"loss.fitted.coral_bias.{k}" for k in range(K - 1)] if loss == "coral_prior" else [])
    if fitted:  # the biases the head started from: falling with k, as the shares of items above each level
        bias = [float(run.data.params[k]) for k in fitted]
        assert bias == sorted(bias, reverse=True) and bias[0] > 0 > bias[-1]


# ------------------------------------------------------------------------------------------ bias_init: prior
def test_coral_prior_starts_the_head_at_the_training_level_distribution():
    cfg, loss, model, tok = _tiny("coral_prior")
    assert loss.bias_init == "prior" and loss.needs_train_labels
    start = model.classifier.coral_bias.detach().clone()
    torch.testing.assert_close(start, torch.arange(K - 1, 0, -1).float() / (K - 1))  # coral_pytorch's, until fit
    # rating_dist's labels: one distribution over the K levels per item; its level is the mean rounded half up
    levels = torch.tensor([0, 1, 1, 2, 2, 2, 3, 4, 4, 4, 5, 6, 6, 7, 7, 7, 7, 8, 8, 0])
    dists = F.one_hot(levels, K).float()
    dists[0] = torch.tensor([0.5, 0.5] + [0.0] * (K - 2))  # mean 0.5: rounded half up, level 1
    levels[0] = 1
    fitted = fit_to_train(loss, dists.tolist(), K)
    share = torch.tensor([(levels > k).float().mean().item() for k in range(K - 1)])
    expected = torch.logit(share)
    torch.testing.assert_close(model.classifier.coral_bias.detach(), expected)
    assert fitted == pytest.approx({f"coral_bias.{k}": float(b) for k, b in enumerate(expected)})
    # an item scored w·h = 0 gets the training split's level distribution
    probs = Coral.predictions(model.classifier.coral_bias.detach().unsqueeze(0)).exp()[0]
    torch.testing.assert_close(probs, torch.bincount(levels, minlength=K).float() / len(levels))
    # class ids work too (-100 left out), and an empty end level stays finite: its share is clipped at 1/2n
    fit_to_train(loss, [3, 4, -100, 5, 5], K)
    n = 4
    torch.testing.assert_close(model.classifier.coral_bias.detach()[[0, 4, 7]],
                               torch.logit(torch.tensor([1 - 0.5 / n, 2 / n, 0.5 / n])))


def test_coral_prior_leaves_a_saved_head_as_it_was(tmp_path):
    torch.manual_seed(1)
    _, _, model, tok = _tiny("coral")
    with torch.no_grad():
        model.classifier.coral_bias.copy_(torch.linspace(2, -2, K - 1))
    model.save_pretrained(tmp_path / "saved")
    tok.save_pretrained(tmp_path / "saved")
    cfg = compose(["task=rating_dist", "loss=coral_prior", "model=minilm", f"model.name_or_path={tmp_path / 'saved'}"])
    loss = instantiate(cfg.loss)
    again, _ = models.build(cfg.model, cfg.task, width=K - 1, loss=loss)
    assert fit_to_train(loss, [0, 4, 8, 8], K) == {}
    torch.testing.assert_close(again.classifier.coral_bias.detach(), torch.linspace(2, -2, K - 1))


def test_coral_prior_fitted_before_the_head_is_built_starts_it_there():
    loss = Coral(bias_init="prior")
    fitted = loss.fit([0, 1, 1, 2, 8, 8], num_classes=K)
    layer = loss.head_layer(8, K - 1)
    share = torch.tensor([5, 3, 2, 2, 2, 2, 2, 2]) / 6
    torch.testing.assert_close(layer.coral_bias.detach(), torch.logit(share))
    assert list(fitted) == [f"coral_bias.{k}" for k in range(K - 1)]
    with pytest.raises(ValueError, match="fitted for 9 levels, the head has 5"):
        loss.head_layer(8, 4)


def test_coral_prior_refuses_levels_outside_the_head():
    loss = Coral(bias_init="prior")
    with pytest.raises(ValueError, match="levels in 0..-1, got none"):
        loss.fit([])
    loss.head_layer(8, K - 1)
    with pytest.raises(ValueError, match=f"levels in 0..{K - 1}, got 0..{K}"):
        loss.fit([0, K])
    with pytest.raises(ValueError, match="bias_init must be one of coral_pytorch, prior, got 'mean'"):
        Coral(bias_init="mean")
