"""Calibration measures shared by the metric suites (imported by the evaluate modules beside this file)."""

import numpy as np

ECE_BINS = 15


def expected_calibration_error(confidence, correct, bins: int = ECE_BINS) -> float:
    """ECE of top-class confidence: Σ_b (n_b / n) |accuracy_b − confidence_b| over equal-width bins."""
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)
