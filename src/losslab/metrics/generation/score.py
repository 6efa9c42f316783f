"""The generation suite's maths, once: rougeL (ROUGE-L F1 per item, ``rouge-score`` stemmed, averaged), chrf
(``sacrebleu``, corpus level, 0–100) and exact_match (after lower-casing and whitespace normalisation), under
weights over the items (``losslab.metrics.weighted``: a row of ones is the plain metric, a row of bootstrap
counts a resample). rougeL and exact_match are means over items, weighted; chrF is not a mean over items, so
it is computed once per row, on the items the row draws (whole-number weights)."""

from __future__ import annotations

import numpy as np

from losslab.metrics.weighted import expand


def _norm(text):
    return " ".join(str(text).lower().split())


def score(predictions, labels, weights) -> dict[str, np.ndarray]:
    """metric -> one value per row of ``weights`` (rows, items); ``predictions`` and ``labels``: texts."""
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import CHRF

    predictions, labels = [str(p) for p in predictions], [str(r) for r in labels]
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    rouge = np.array([scorer.score(ref, pred)["rougeL"].fmeasure for pred, ref in zip(predictions, labels)])
    exact = np.array([_norm(p) == _norm(r) for p, r in zip(predictions, labels)], dtype=np.float64)
    n = weights.sum(1)
    chrf = []
    for row in weights:
        idx = expand(row)
        chrf.append(CHRF().corpus_score([predictions[i] for i in idx], [[labels[i] for i in idx]]).score)
    return {"rougeL": np.where(n > 0, (weights @ rouge.reshape(-1)) / np.where(n > 0, n, 1.0), np.nan),
            "chrf": np.asarray(chrf, dtype=np.float64),
            "exact_match": (weights @ exact.reshape(-1)) / n}
