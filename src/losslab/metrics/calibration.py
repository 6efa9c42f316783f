"""Calibration measures shared by the metric suites (their ``score`` functions beside the evaluate modules)."""

import numpy as np

ECE_BINS = 15


def ece(w, confidence, correct, bins: int = ECE_BINS):
    """ECE of top-class confidence under each row of weights ``w`` (rows, items): Σ_b (n_b / n)
    |accuracy_b − confidence_b| over equal-width bins, n_b the bin's weight."""
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    onehot = np.eye(bins)[which]
    gap = w @ (onehot * correct[:, None]) - w @ (onehot * confidence[:, None])
    return np.abs(gap).sum(1) / w.sum(1)


def expected_calibration_error(confidence, correct, bins: int = ECE_BINS) -> float:
    """ECE of top-class confidence: Σ_b (n_b / n) |accuracy_b − confidence_b| over equal-width bins."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(ece(np.ones((1, len(np.asarray(confidence)))), confidence, correct, bins)[0])
