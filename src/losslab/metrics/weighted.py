"""The weighted sums the metric suites' ``score`` functions share (numpy only).

Every suite's maths is written once, as ``score(predictions, labels, weights)`` in
``metrics/<suite>/score.py``: ``weights`` is (resamples, items), how often each item counts in each row, and
every metric comes back as one value per row. A row of ones is the plain metric (what the suite's ``evaluate``
module returns to the Trainer); a row of bootstrap counts is the metric on that resample, because drawing item
i k times is the same as scoring a test set that holds it k times (``losslab.report.items``).
"""

from __future__ import annotations

import numpy as np


def as_weights(weights, n: int) -> np.ndarray:
    """``weights`` as a (rows, n) float64 array; None: one row of ones (each item once: the plain metric)."""
    if weights is None:
        return np.ones((1, n))
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if w.shape[1] != n:
        raise ValueError(f"weights: {w.shape[1]} columns for {n} items")
    return w


def once(score, predictions, labels, *args) -> dict[str, float]:
    """A suite's ``score`` with every item counted once (one row of ones): the plain metric, as floats (what
    the suite's ``evaluate`` module returns)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return {k: float(v[0]) for k, v in score(predictions, labels, np.ones((1, len(predictions))), *args).items()}


def ratio(num, den):
    """num / den where den > 0, else 0 (scikit-learn's ``zero_division=0``)."""
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def pearson(w, x, y):
    """Weighted Pearson correlation of x and y under each row of weights w (centred first, for accuracy); NaN
    where either is constant under that row."""
    x, y = x - x.mean(), y - y.mean()
    n = w.sum(1)
    sx, sy = w @ x, w @ y
    sxx, syy, sxy = w @ (x * x), w @ (y * y), w @ (x * y)
    cov = sxy - sx * sy / n
    vx, vy = sxx - sx * sx / n, syy - sy * sy / n
    ok = (vx > 1e-12 * (x * x).sum()) & (vy > 1e-12 * (y * y).sum())
    return np.where(ok, cov / np.sqrt(np.where(ok, vx * vy, 1.0)), np.nan)


def ranks(w, x):
    """Average ranks (1-based, ties shared) of each item in the sample that holds item i w[:, i] times."""
    uniq, inv = np.unique(x, return_inverse=True)
    g = np.zeros((w.shape[0], len(uniq)))
    np.add.at(g.T, inv, w.T)  # weight of each distinct value in each row
    below = np.cumsum(g, axis=1) - g
    rank_u = below + (g + 1) / 2
    return rank_u[:, inv]


def spearman(w, x, y, chunk: int = 100):
    """Weighted Spearman correlation: Pearson's of the average ranks each row of ``w`` gives (``chunk`` rows'
    ranks at a time: (chunk, items) floats)."""
    out = np.empty(w.shape[0])
    for start in range(0, w.shape[0], chunk):
        ww = w[start:start + chunk]
        rx, ry = ranks(ww, x), ranks(ww, y)
        out[start:start + chunk] = [pearson(ww[i:i + 1], rx[i], ry[i])[0] for i in range(len(ww))]
    return out


def log_softmax(z):
    z = np.asarray(z, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def classes(w, pred, y, k):
    """accuracy and macro F1 of predicted classes (every class in 0..k-1 counted, F1 = 0 where a class is neither
    true nor predicted: scikit-learn's ``labels=range(k), zero_division=0``), and whether each item is right."""
    n = w.sum(1)
    correct = (pred == y).astype(np.float64)
    cls = np.arange(k)
    is_pred = (pred[:, None] == cls).astype(np.float64)
    is_true = (y[:, None] == cls).astype(np.float64)
    tp, npred, ntrue = w @ (is_pred * is_true), w @ is_pred, w @ is_true
    f1 = ratio(2 * tp, npred + ntrue)
    return {"accuracy": (w @ correct) / n, "macro_f1": f1.mean(1)}, correct


def expand(row) -> np.ndarray:
    """The item indices of the sample one row of whole-number weights describes (item i w[i] times)."""
    row = np.asarray(row)
    return np.repeat(np.arange(len(row)), np.rint(row).astype(np.int64))
