"""A metric suite on bootstrap resamples of test items, all resamples at once.

``replicates(suite, predictions, labels, counts)`` gives, for every metric of the suite, its value on each
resample (``counts``: (resamples, items), how often each item is drawn). It is the suite's own ``score``
(``losslab.metrics.Suite.score``, the maths in ``metrics/<suite>/score.py``) with the counts as weights:
drawing item i k times is the same as scoring a test set that holds it k times, so each value equals the suite
on the expanded subset (tests/test_report_items.py checks every suite against the suite itself). The suites
whose metrics are sums over items (per-item errors, confusion counts, calibration bins, entity counts per
sentence) take every resample at once; ``generation`` (chrF) one at a time. Entity-level metrics resample
sentences, never tokens.
"""

from __future__ import annotations

import numpy as np

from losslab import metrics


def replicates(suite: str, predictions, labels, counts, label_names=None, thresholds=None) -> dict[str, np.ndarray]:
    """metric -> (resamples,) values of ``suite`` on each resample (one row of ``counts`` per resample)."""
    counts = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    return metrics.get(suite).score(predictions, labels, counts, label_names, thresholds)


def vectorized(suite: str) -> bool:
    """Whether ``suite`` scores every resample at once (else one at a time: the report draws fewer)."""
    s = metrics.get(suite)
    return s.vectorized and s.scorer() is not None
