"""The metric suites (``evaluate`` modules loaded by local path) against scikit-learn and SciPy.

Each suite's maths is written once (``metrics/<suite>/score.py``) and weighted: checked here against the
libraries the suites once called (scikit-learn, SciPy, seqeval, rouge-score, sacrebleu) on plain data and on
the edge cases (ties, constant predictions, a class never predicted, a label never on), and against the suite's
``evaluate`` module, which calls it with every item once."""

from __future__ import annotations

import ast

import numpy as np
import pytest
from scipy import stats
from scipy.special import log_softmax
from sklearn import metrics as skm

from losslab import metrics
from losslab.metrics.calibration import expected_calibration_error

rng = np.random.default_rng(1)


def test_suites_load_offline_by_local_path():
    assert {"regression", "classification"} <= set(metrics.suites())
    with pytest.raises(ValueError, match="choose one of"):
        metrics.load("nope")


def test_regression_suite():
    y = rng.normal(size=200)
    p = y + rng.normal(size=200) * 0.5
    got = metrics.load("regression").compute(predictions=p, references=y)
    mse = skm.mean_squared_error(y, p)
    assert got["mse"] == pytest.approx(mse)
    assert got["rmse"] == pytest.approx(np.sqrt(mse))
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, p))
    assert got["r2"] == pytest.approx(skm.r2_score(y, p))
    assert got["pearson"] == pytest.approx(stats.pearsonr(p, y)[0])
    assert got["spearman"] == pytest.approx(stats.spearmanr(p, y)[0])


def test_regression_suite_constant_predictions_give_nan_correlation():
    got = metrics.load("regression").compute(predictions=[0.0] * 5, references=[1, 2, 3, 4, 5])
    assert np.isnan(got["pearson"]) and got["mse"] == pytest.approx(11.0)


def test_classification_suite():
    logits = rng.normal(size=(300, 3)) * 2
    y = rng.integers(0, 3, size=300)
    got = metrics.load("classification").compute(predictions=logits, references=y)
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, prob.argmax(1)))
    assert got["macro_f1"] == pytest.approx(skm.f1_score(y, prob.argmax(1), average="macro"))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, prob, labels=[0, 1, 2]))


def test_expected_calibration_error_by_hand():
    # two bins used: confidence 0.9 (4 items, 3 right) and 0.6 (2 items, 2 right)
    conf = np.array([0.9, 0.9, 0.9, 0.9, 0.6, 0.6])
    correct = np.array([1, 1, 1, 0, 1, 1], dtype=float)
    from losslab.metrics.calibration import ece, expected_calibration_error

    expected = 4 / 6 * abs(0.75 - 0.9) + 2 / 6 * abs(1.0 - 0.6)
    assert expected_calibration_error(conf, correct) == pytest.approx(expected)
    # weighted: the first item twice, the last not at all = that sample expanded
    w = np.array([[2.0, 1, 1, 1, 1, 0]])
    idx = [0, 0, 1, 2, 3, 4]
    assert ece(w, conf, correct)[0] == pytest.approx(expected_calibration_error(conf[idx], correct[idx]))


def test_every_task_objective_is_a_metric_its_suite_reports():
    from conftest import compose, options

    for task in options("task"):
        cfg = compose([f"task={task}"]).task
        assert cfg.objective in metrics.get(cfg.metrics).names(cfg.get("num_labels"), cfg.get("labels")), task


def test_each_suite_declares_the_direction_of_what_it_reports():
    for name in metrics.suites():
        suite = metrics.get(name)
        reported = set(suite.names(3)) - {m for m in suite.names(3) if m.startswith(("f1_", "ap_"))}
        assert reported and reported <= suite.lower | suite.higher, name
        assert not suite.lower & suite.higher, name


TAGS = ["B-x", "I-x", "B-y", "I-y", "O"]


def _plain(suite, p, y, **kw):
    return {k: float(v[0]) for k, v in metrics.get(suite).score(p, y, **kw).items()}


def _close(got, want):
    assert set(want) <= set(got)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-9, abs=1e-12, nan_ok=True), k


@pytest.mark.parametrize("case", ["plain", "ties", "constant predictions"])
def test_regression_against_scipy_and_sklearn(case):
    rng = np.random.default_rng(11)
    y = rng.normal(size=150)
    p = y + rng.normal(size=150)
    if case == "ties":
        p, y = np.round(p, 1), np.round(y)
    if case == "constant predictions":
        p = np.full(150, 0.25)
    varied = np.ptp(p) > 0
    _close(_plain("regression", p, y), {
        "mse": skm.mean_squared_error(y, p), "rmse": np.sqrt(skm.mean_squared_error(y, p)),
        "mae": skm.mean_absolute_error(y, p), "r2": skm.r2_score(y, p),
        "pearson": stats.pearsonr(p, y)[0] if varied else np.nan,
        "spearman": stats.spearmanr(p, y)[0] if varied else np.nan})


def test_regression_constant_labels_give_nan_r2_and_correlations():
    got = _plain("regression", [0.1, 0.3, 0.2], [0.1, 0.1, 0.1])
    assert np.isnan(got["r2"]) and np.isnan(got["pearson"]) and np.isnan(got["spearman"])


@pytest.mark.parametrize("case", ["plain", "a class never predicted nor true"])
def test_classification_and_ratings_against_sklearn(case):
    rng = np.random.default_rng(12)
    logits = rng.normal(size=(200, 5)) * 2
    y = rng.integers(0, 4 if case == "plain" else 3, 200)
    if case != "plain":
        logits[:, 4] -= 100
    logp = log_softmax(logits, axis=-1)
    pred = logp.argmax(1)
    _close(_plain("classification", logits, y), {
        "accuracy": skm.accuracy_score(y, pred),
        "macro_f1": skm.f1_score(y, pred, labels=np.arange(5), average="macro", zero_division=0),
        "log_loss": -logp[np.arange(200), y].mean(),
        "ece": expected_calibration_error(np.exp(logp.max(1)), pred == y)})
    t = rng.dirichlet(np.ones(5), 200)
    level = np.floor((t * np.arange(5)).sum(1) + 0.5).astype(int)
    _close(_plain("ratings", logits, t), {
        "accuracy": skm.accuracy_score(level, pred),
        "macro_f1": skm.f1_score(level, pred, labels=np.arange(5), average="macro", zero_division=0),
        "log_loss": -logp[np.arange(200), level].mean(),
        "kl": (t * (np.log(t) - logp)).sum(1).mean(),
        "level_mae": np.abs(pred - level).mean()})


@pytest.mark.parametrize("case", ["plain", "a label never on, ties", "every logit below 0"])
def test_multilabel_against_sklearn(case):
    rng = np.random.default_rng(13)
    scores = rng.normal(size=(120, 4))
    y = (rng.random((120, 4)) < 0.3).astype(int)
    if case == "a label never on, ties":
        y[:, 2], y[:4] = 0, 1
        scores = np.round(scores)
    if case == "every logit below 0":
        scores -= 10
    pred = (scores > 0).astype(int)
    want = {
        "micro_f1": skm.f1_score(y, pred, average="micro", zero_division=0),
        "macro_f1": skm.f1_score(y, pred, average="macro", zero_division=0),
        "subset_accuracy": (pred == y).all(1).mean(),
        "lrap": skm.label_ranking_average_precision_score(y, scores),
        "macro_ap": np.mean([skm.average_precision_score(y[:, j], scores[:, j]) if y[:, j].any() else 0.0
                             for j in range(4)])}
    want.update({f"f1_{n}": v for n, v in zip("abcd", skm.f1_score(y, pred, average=None, zero_division=0))})
    _close(_plain("multilabel", scores, y, label_names=list("abcd")), want)


def test_entities_against_seqeval_and_perplexity_by_hand():
    from seqeval.metrics import f1_score, precision_score, recall_score

    rng = np.random.default_rng(14)
    y = rng.choice(5, size=(80, 9), p=[0.1, 0.05, 0.1, 0.05, 0.7])
    y[:, 0], y[:, -2:] = -100, -100
    p = np.where(rng.random((80, 9)) < 0.7, y, rng.integers(0, 5, (80, 9)))
    true = [[TAGS[t] for t in row if t != -100] for row in y]
    pred = [[TAGS[a] for a, t in zip(prow, row) if t != -100] for prow, row in zip(p, y)]
    flat = np.concatenate([np.asarray(r) for r in true]) == np.concatenate([np.asarray(r) for r in pred])
    _close(_plain("entities", p, y, label_names=TAGS), {
        "precision": precision_score(true, pred, zero_division=0), "recall": recall_score(true, pred, zero_division=0),
        "f1": f1_score(true, pred, zero_division=0), "accuracy": flat.mean()})
    with pytest.raises(ValueError, match="label_names"):
        metrics.get("entities").score(p, y)
    nll = rng.random((30, 7)) * 3
    nll[:, -2:] = -100
    ragged = [list(r[:3 + i % 4]) for i, r in enumerate(nll)]  # rows of different lengths
    mean = np.concatenate([np.asarray(r)[np.asarray(r) >= 0] for r in ragged]).mean()
    _close(_plain("perplexity", ragged, [[0]] * 30), {"nll": mean, "perplexity": np.exp(mean)})


def test_generation_against_rouge_score_and_sacrebleu():
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import CHRF

    preds = ["a small dog", "the cat sat", "A  Cat", "full of merriment"]
    refs = ["a small dog", "a cat sat down", "a cat", "the act of running"]
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    _close(_plain("generation", preds, refs), {
        "rougeL": np.mean([scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(preds, refs)]),
        "chrf": CHRF().corpus_score(preds, [refs]).score, "exact_match": 0.5})
    # weighted: item 1 three times, item 3 left out = that sample expanded
    got = metrics.get("generation").score(preds, refs, np.array([[1, 3, 1, 0], [1, 1, 1, 1]]))
    idx = [0, 1, 1, 1, 2]
    _close({k: v[0] for k, v in got.items()}, _plain("generation", [preds[i] for i in idx], [refs[i] for i in idx]))


@pytest.mark.parametrize("suite", ["regression", "classification", "ratings", "multilabel", "entities",
                                   "perplexity", "generation"])
def test_the_evaluate_module_is_the_suites_score_with_every_item_once(suite):
    probe = metrics.get(suite).probe(3)
    names = TAGS[:2] + ["L0"] if metrics.get(suite).takes_label_names else None
    extra = {"label_names": names} if names else {}
    assert metrics.load(suite).compute(predictions=probe[0], references=probe[1], **extra) == \
        pytest.approx(_plain(suite, *probe, **extra), nan_ok=True)
    # the module holds no maths of its own: it imports its score and nothing numeric
    source = (metrics.SUITES_DIR / suite / f"{suite}.py").read_text(encoding="utf-8")
    imported = {n.module for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom)} | \
        {a.name for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Import) for a in n.names}
    assert f"losslab.metrics.{suite}.score" in imported, suite
    assert not imported & {"numpy", "scipy", "sklearn", "scipy.special", "sklearn.metrics", "seqeval.metrics"}


def test_a_suite_without_score_py_is_scored_one_resample_at_a_time(monkeypatch):
    rng = np.random.default_rng(15)
    logits, y = rng.normal(size=(50, 3)), rng.integers(0, 3, 50)
    counts = np.stack([np.bincount(rng.integers(0, 50, 50), minlength=50) for _ in range(3)])
    suite = metrics.get("classification")
    fast = suite.score(logits, y, counts)
    monkeypatch.setattr(metrics.Suite, "scorer", lambda self: None)
    slow = suite.score(logits, y, counts)
    for k in fast:
        np.testing.assert_allclose(slow[k], fast[k], rtol=1e-9)


def test_weights_shape_is_checked():
    with pytest.raises(ValueError, match="columns"):
        metrics.get("regression").score([0.0, 1.0, 2.0], [0.0, 1.0, 1.0], np.ones((2, 4)))


@pytest.mark.parametrize("suite", ["regression", "classification", "ratings", "multilabel", "entities", "perplexity"])
def test_the_trainers_compute_metrics_equals_the_suites_score(suite):
    """What the Trainer logs at evaluation (``Suite.compute_metrics``: the evaluate module, inputs in the suite's
    form) is the suite's ``score`` with every item once, the same function the report's bootstrap weights."""
    from transformers import EvalPrediction

    rng = np.random.default_rng(16)
    n = 40
    p, y = {"regression": (rng.normal(size=(n, 1)), rng.normal(size=n)),
            "classification": (rng.normal(size=(n, 3)), rng.integers(0, 3, n)),
            "ratings": (rng.normal(size=(n, 4)), rng.dirichlet(np.ones(4), n)),
            "multilabel": (rng.normal(size=(n, 3)), (rng.random((n, 3)) < 0.4).astype(int)),
            "entities": (rng.integers(0, 5, (n, 6)),
                         np.where(rng.random((n, 6)) < 0.2, -100, rng.integers(0, 5, (n, 6)))),
            "perplexity": (np.where(rng.random((n, 6)) < 0.2, -100.0, rng.random((n, 6)) * 3), np.zeros((n, 6), int)),
            }[suite]
    names = TAGS if suite == "entities" else (list("abc") if suite == "multilabel" else None)
    s = metrics.get(suite)
    logged = s.compute_metrics(names)(EvalPrediction(predictions=p, label_ids=y))
    _close(logged, _plain(suite, p, y, label_names=names))
