"""Temperature scaling (Guo et al., ICML 2017), fitted on validation and applied unchanged to test (numpy only).

One scalar T divides a classifier's logits: it changes no prediction (the argmax is the same), only the
confidence, so it is the baseline any "this loss calibrates better" claim has to beat. It is fitted as the
calibration papers losslab tests ran it: Mukhoti et al. (NeurIPS 2020, ``torrvision/focal_calibration``'s
``temperature_scaling.py``) search T over the grid 0.1, 0.2, …, 10.0 and keep the first T with the lowest
validation ECE (15 equal-width bins; ``by="nll"``: the lowest validation NLL, Guo et al.'s criterion). The
report uses it for the ``ts_`` metrics (``losslab.report.build``): each run's T from its own validation
predictions, its test metrics recomputed on ``logits / T``.
"""

from __future__ import annotations

import numpy as np

from losslab.metrics.calibration import ece
from losslab.metrics.weighted import log_softmax

GRID = np.round(np.arange(1, 101) * 0.1, 1)  # 0.1 … 10.0, the authors' search


def criteria(logits, labels, temperatures=GRID) -> dict[str, np.ndarray]:
    """Validation ECE and NLL of ``logits / T`` for every T of ``temperatures``."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    ones = np.ones((1, len(y)))
    eces, nlls = [], []
    for t in temperatures:
        logp = log_softmax(z / t)
        correct = (logp.argmax(1) == y).astype(np.float64)
        eces.append(float(ece(ones, np.exp(logp.max(1)), correct)[0]))
        nlls.append(float(-logp[np.arange(len(y)), y].mean()))
    return {"ece": np.asarray(eces), "nll": np.asarray(nlls)}


def fit(logits, labels, by: str = "ece", temperatures=GRID) -> float:
    """The T of ``temperatures`` with the lowest validation ``by`` (``ece`` or ``nll``); the first one on a
    tie, as the authors' strict ``>`` keeps it."""
    if by not in ("ece", "nll"):
        raise ValueError(f"temperature: by must be 'ece' or 'nll', got {by!r}")
    if len(np.asarray(labels)) == 0:
        return 1.0
    values = criteria(logits, labels, temperatures)[by]
    return float(np.asarray(temperatures)[int(np.argmin(values))])
