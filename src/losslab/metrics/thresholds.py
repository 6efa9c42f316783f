"""Decision thresholds chosen on validation, applied to test (numpy only).

A suite with a cut-off (the multi-label suite: a label is on where its logit is > 0) judges a model's
calibration as much as its ranking: a model trained with a focal loss can rank the labels well (high LRAP) and
still put every logit below 0. The fair comparison picks each label's threshold on *validation* (the one that
maximizes that label's F1 there) and applies it unchanged to *test*.
"""

from __future__ import annotations

import numpy as np


def best_f1_threshold(scores, labels) -> float:
    """The score cut-off (a label is on where score > cut) with the highest F1 on these items; 0.0 when no
    item is positive. Cuts lie halfway between neighbouring distinct scores; ties go to the highest cut."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels) > 0
    if not y.any() or len(s) == 0:
        return 0.0
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # predicted on: the items up to the end of a tie group
    tp = np.cumsum(y)[last]
    on = last + 1
    f1 = 2 * tp / (on + y.sum())
    k = int(np.argmax(f1))  # the first maximum: the fewest items on
    below = s[last[k] + 1] if last[k] + 1 < len(s) else s[last[k]] - 1.0
    return float((s[last[k]] + below) / 2)


def choose(scores, labels) -> np.ndarray:
    """One threshold per label (column) of ``scores`` (items x labels), each the best-F1 cut on these items."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    return np.array([best_f1_threshold(scores[:, j], labels[:, j]) for j in range(scores.shape[1])])
