"""Each metric suite on bootstrap resamples of test items (losslab.report.items) equals the suite itself on the
resampled items; thresholds chosen on validation; the multi-label suite's threshold-free macro AP."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from losslab import metrics
from losslab.metrics.thresholds import best_f1_threshold, choose
from losslab.report import items

N, T = 240, 10
TAGS = ["B-x", "I-x", "B-y", "I-y", "O"]


def _data(suite: str, rng):
    if suite == "regression":
        y = rng.normal(size=N)
        p = y + rng.normal(size=N) * 0.7
        p[:20] = p[0]  # ties, for spearman's average ranks
        return p, y
    if suite == "classification":
        return rng.normal(size=(N, 4)) * 2, rng.integers(0, 4, N)
    if suite == "ratings":
        return rng.normal(size=(N, 9)), rng.dirichlet(np.ones(9), N)
    if suite == "multilabel":
        return rng.normal(size=(N, 4)), (rng.random((N, 4)) < 0.3).astype(int)
    if suite == "entities":
        y = rng.choice(5, size=(N, T), p=[0.1, 0.05, 0.1, 0.05, 0.7])
        y[:, 0], y[:, -3:] = -100, -100  # special tokens, padding
        p = np.where(rng.random((N, T)) < 0.8, y, rng.integers(0, 5, (N, T)))
        return np.where(y == -100, -100, p), y
    if suite == "perplexity":
        nll = rng.random((N, T)) * 3
        nll[:, -2:] = -100
        return nll, np.zeros((N, T), dtype=int)
    raise KeyError(suite)


@pytest.mark.parametrize("suite", ["regression", "classification", "ratings", "multilabel", "entities", "perplexity"])
def test_a_resample_scores_as_the_suite_scores_the_resampled_items(suite):
    rng = np.random.default_rng(3)
    p, y = _data(suite, rng)
    names = TAGS if suite == "entities" else (list("abcd") if suite == "multilabel" else None)
    draws = [rng.integers(0, N, N) for _ in range(3)]
    counts = np.stack([np.bincount(d, minlength=N) for d in draws])
    got = items.replicates(suite, p, y, counts, names)
    suite_module = metrics.load(suite)
    for b, idx in enumerate(draws):
        pp, yy = p[idx], y[idx]
        if suite in ("entities", "perplexity"):
            pp, yy = [list(r) for r in pp], [list(r) for r in yy]
        ref = suite_module.compute(predictions=pp, references=yy, **({"label_names": names} if names else {}))
        assert set(ref) <= set(got)
        for k, v in ref.items():
            assert got[k][b] == pytest.approx(v, rel=1e-9, abs=1e-12, nan_ok=True), (suite, k)


def test_a_resample_matches_predictions_score_the_report_contract():
    from losslab import predictions

    rng = np.random.default_rng(4)
    p, y = _data("classification", rng)
    idx = rng.integers(0, N, N)
    got = items.replicates("classification", p, y, np.bincount(idx, minlength=N)[None])
    for k, v in predictions.score("classification", p[idx], y[idx]).items():
        assert got[k][0] == pytest.approx(v)


def test_multilabel_thresholds_and_macro_ap():
    rng = np.random.default_rng(5)
    scores, y = _data("multilabel", rng)
    th = np.array([0.5, -0.3, 0.0, 1.0])
    ref = metrics.load("multilabel").compute(predictions=scores, references=y, thresholds=th)
    got = items.replicates("multilabel", scores, y, np.ones((1, N)), thresholds=th)
    assert got["macro_f1"][0] == pytest.approx(ref["macro_f1"])
    expected_ap = np.mean([average_precision_score(y[:, j], scores[:, j]) for j in range(4)])
    assert ref["macro_ap"] == pytest.approx(expected_ap) and got["macro_ap"][0] == pytest.approx(expected_ap)
    # macro AP does not depend on where the threshold is: all logits shifted below 0 keep it
    shifted = metrics.load("multilabel").compute(predictions=scores - 10, references=y)
    assert shifted["macro_ap"] == pytest.approx(expected_ap) and shifted["macro_f1"] == 0.0


def test_best_f1_threshold_by_hand():
    scores = np.array([-3.0, -2.0, -1.5, -1.0, -0.5])
    labels = np.array([0, 0, 1, 1, 1])
    cut = best_f1_threshold(scores, labels)
    assert cut == pytest.approx(-1.75)  # halfway between -2 and -1.5: the three positives on, F1 = 1
    assert ((scores > cut) == labels.astype(bool)).all()
    assert best_f1_threshold(scores, np.zeros(5)) == 0.0  # no positive: the default cut
    # chosen on validation, applied to test: a model whose logits all sit below 0 gets its F1 back
    rng = np.random.default_rng(6)
    y = (rng.random((400, 2)) < 0.4).astype(int)
    logits = y * 2.0 + rng.normal(size=(400, 2)) * 0.5 - 5.0
    th = choose(logits[:200], y[:200])
    suite = metrics.load("multilabel")
    assert suite.compute(predictions=logits[200:], references=y[200:])["macro_f1"] == 0.0
    assert suite.compute(predictions=logits[200:], references=y[200:], thresholds=th)["macro_f1"] > 0.9


def test_a_suite_without_a_fast_path_calls_the_suite_per_resample():
    rng = np.random.default_rng(8)
    words = ["a small dog", "a cat", "full of merriment", "the act of running", "a big cat"]
    refs = np.array([words[i] for i in rng.integers(0, 5, 20)], dtype=object)
    preds = np.array([w if rng.random() < 0.5 else words[0] for w in refs], dtype=object)
    idx = rng.integers(0, 20, 20)
    got = items.replicates("generation", preds, refs, np.bincount(idx, minlength=20)[None])
    ref = metrics.load("generation").compute(predictions=list(preds[idx]), references=list(refs[idx]))
    assert {k: got[k][0] for k in ref} == pytest.approx(ref)
