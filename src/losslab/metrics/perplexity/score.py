"""The language-modelling suite's maths, once: perplexity = exp(nll), nll the mean next-token NLL over the
scored tokens of the items, under weights over the items (``losslab.metrics.weighted``: a row of ones is the
plain metric, a row of bootstrap counts a resample of sequences)."""

from __future__ import annotations

import numpy as np


def score(predictions, labels, weights) -> dict[str, np.ndarray]:
    """metric -> one value per row of ``weights`` (rows, items); ``predictions``: per sequence, the NLL of each
    position, negative where it is not scored (padding); ``labels`` are not read."""
    try:
        nll = np.asarray(predictions, dtype=np.float64)
        nll = nll.reshape(len(nll), -1)
        scored = nll >= 0
        total, count = np.where(scored, nll, 0.0).sum(1), scored.sum(1).astype(np.float64)
    except ValueError:  # rows of different lengths
        rows = [np.asarray(r, dtype=np.float64).reshape(-1) for r in predictions]
        total = np.array([r[r >= 0].sum() for r in rows])
        count = np.array([float((r >= 0).sum()) for r in rows])
    total, count = weights @ total, weights @ count
    mean = np.where(count > 0, total / np.where(count > 0, count, 1.0), np.nan)
    return {"perplexity": np.exp(mean), "nll": mean}
