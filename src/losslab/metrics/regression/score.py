"""The regression suite's maths, once: mse, rmse, mae, pearson, spearman, r2 under weights over the items
(``losslab.metrics.weighted``: a row of ones is the plain metric, a row of bootstrap counts a resample)."""

from __future__ import annotations

import numpy as np

from losslab.metrics.weighted import pearson, spearman


def score(predictions, labels, weights) -> dict[str, np.ndarray]:
    """metric -> one value per row of ``weights`` (rows, items). The correlations are NaN where the predictions
    or the labels are constant, r2 where the labels are."""
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    p = np.asarray(predictions, dtype=np.float64).reshape(len(y), -1)[:, 0]  # one output: (n, 1) or (n,)
    w = weights
    n = w.sum(1)
    err = p - y
    sse = w @ (err * err)
    mse = sse / n
    yc = y - y.mean()
    ss_tot = w @ (yc * yc) - (w @ yc) ** 2 / n
    varied = ss_tot > 1e-12 * (w @ (yc * yc))  # not constant labels (up to rounding)
    out = {"mse": mse, "rmse": np.sqrt(mse), "mae": (w @ np.abs(err)) / n,
           "r2": np.where(varied, 1.0 - sse / np.where(varied, ss_tot, 1.0), np.nan)}
    if np.ptp(p) > 0 and np.ptp(y) > 0:
        out["pearson"], out["spearman"] = pearson(w, p, y), spearman(w, p, y)
    else:
        out["pearson"] = out["spearman"] = np.full(w.shape[0], np.nan)
    return out
