"""The multi-label suite's maths, once: micro_f1, macro_f1, f1_<label>, subset_accuracy, lrap, macro_ap under
weights over the items (``losslab.metrics.weighted``: a row of ones is the plain metric, a row of bootstrap
counts a resample). F1 and lrap as scikit-learn computes them (``zero_division=0``); average precision as
scikit-learn's with ``sample_weight`` = the weights, 0 for a label with no positive item."""

from __future__ import annotations

import numpy as np

from losslab.metrics.weighted import ratio


def lrap_per_item(scores, y):
    """Label-ranking average precision of each item (scikit-learn's: 1 when no or every label is on)."""
    scores, y = np.asarray(scores, dtype=np.float64), np.asarray(y) > 0
    at_least = scores[:, None, :] >= scores[:, :, None]  # [i, j, k]: label k ranked at or above label j
    rank_all = at_least.sum(2)
    rank_pos = (at_least & y[:, None, :]).sum(2)
    npos = y.sum(1)
    per = np.where(y, rank_pos / rank_all, 0.0).sum(1) / np.maximum(npos, 1)
    return np.where((npos == 0) | (npos == y.shape[1]), 1.0, per)


def average_precision(w, score, y):
    """Weighted average precision of one label under each row of ``w``; 0 where no positive item counts."""
    order = np.argsort(-score, kind="mergesort")
    s, pos = score[order], y[order].astype(np.float64)
    wo = w[:, order]
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # the last index of each group of tied scores
    tp = np.cumsum(wo * pos, axis=1)[:, last]
    allc = np.cumsum(wo, axis=1)[:, last]
    precision = ratio(tp, allc)
    recall_gain = np.diff(np.concatenate([np.zeros((w.shape[0], 1)), tp], axis=1), axis=1)
    total = tp[:, -1]
    return ratio((recall_gain * precision).sum(1), total)


def score(predictions, labels, weights, label_names=None, thresholds=None) -> dict[str, np.ndarray]:
    """metric -> one value per row of ``weights`` (rows, items). A label is on where its logit is above its
    threshold (``thresholds``: one per label; default 0, probability > 0.5)."""
    w = weights
    scores = np.asarray(predictions, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64)
    th = np.zeros(y.shape[1]) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    pred = (scores > th).astype(np.float64)
    yt = y.astype(np.float64)
    tp, fp, fn = w @ (pred * yt), w @ (pred * (1 - yt)), w @ ((1 - pred) * yt)
    f1 = ratio(2 * tp, 2 * tp + fp + fn)
    names = list(label_names) if label_names else [str(i) for i in range(y.shape[1])]
    n = w.sum(1)
    out = {
        "micro_f1": ratio(2 * tp.sum(1), 2 * tp.sum(1) + fp.sum(1) + fn.sum(1)),
        "macro_f1": f1.mean(1),
        "subset_accuracy": (w @ (pred == yt).all(1).astype(np.float64)) / n,
        "lrap": (w @ lrap_per_item(scores, y)) / n,
        "macro_ap": np.stack([average_precision(w, scores[:, j], y[:, j]) for j in range(y.shape[1])], 1).mean(1),
    }
    out.update({f"f1_{name}": f1[:, j] for j, name in zip(range(y.shape[1]), names)})
    return out
