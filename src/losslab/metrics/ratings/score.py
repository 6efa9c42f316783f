"""The rating-distribution suite's maths, once: accuracy, macro_f1, log_loss, ece, kl, level_mae under weights
over the items (``losslab.metrics.weighted``: a row of ones is the plain metric, a row of bootstrap counts a
resample). The level of an item is its distribution's mean, rounded half up; the predicted level the argmax of
the row's K scores, or the loss's own, the K + 1-th value (``losslab.metrics.levels``)."""

from __future__ import annotations

import numpy as np

from losslab.metrics.calibration import ece
from losslab.metrics.levels import split
from losslab.metrics.weighted import classes, log_softmax


def score(predictions, labels, weights) -> dict[str, np.ndarray]:
    """metric -> one value per row of ``weights`` (rows, items); ``labels``: (items, K) distributions."""
    w = weights
    t = np.asarray(labels, dtype=np.float64)
    k = t.shape[1]
    scores, pred = split(predictions, k)
    logq = log_softmax(scores)
    level = np.floor((t * np.arange(k)).sum(1) + 0.5).astype(np.int64)
    out, correct = classes(w, pred, level, k)
    n = w.sum(1)
    kl = np.where(t > 0, t * (np.log(np.where(t > 0, t, 1.0)) - logq), 0.0).sum(1)
    out.update({
        "log_loss": (w @ -logq[np.arange(len(level)), level]) / n,
        "ece": ece(w, np.exp(logq[np.arange(len(pred)), pred]), correct),
        "kl": (w @ kl) / n,
        "level_mae": (w @ np.abs(pred - level).astype(np.float64)) / n,
    })
    return out
