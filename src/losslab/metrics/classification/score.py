"""The classification suite's maths, once: accuracy, macro_f1, log_loss, ece from logits under weights over the
items (``losslab.metrics.weighted``: a row of ones is the plain metric, a row of bootstrap counts a resample)."""

from __future__ import annotations

import numpy as np

from losslab.metrics.calibration import ece
from losslab.metrics.weighted import classes, log_softmax


def score(predictions, labels, weights) -> dict[str, np.ndarray]:
    """metric -> one value per row of ``weights`` (rows, items); ``predictions``: (items, classes) logits."""
    logp = log_softmax(predictions)
    y = np.asarray(labels, dtype=np.int64)
    pred = logp.argmax(1)
    out, correct = classes(weights, pred, y, logp.shape[1])
    out["log_loss"] = (weights @ -logp[np.arange(len(y)), y]) / weights.sum(1)
    out["ece"] = ece(weights, np.exp(logp.max(1)), correct)
    return out
