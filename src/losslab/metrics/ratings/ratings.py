"""losslab's rating-distribution suite as an ``evaluate`` metric, for labels that are distributions over K
ordered levels (the raters' votes): the level of a sentence is its distribution's mean, rounded half up.

accuracy, macro_f1, log_loss (NLL of that level), ece (15 bins), kl (KL divergence from the raters'
distribution to the model's), level_mae (mean absolute error of the predicted level, in levels).
Takes logits (or log-probabilities) over the K levels; the predicted level is their argmax, or, for a loss that
decodes levels its own way (coral, corn: ``Loss.predict_levels``), the level the row carries as its K + 1-th
value (``losslab.metrics.levels``); ece bins the probability of the predicted level.
Loaded by local path so it works offline.
"""

import datasets
import evaluate
import numpy as np
from scipy.special import log_softmax
from sklearn.metrics import f1_score

from losslab.metrics.calibration import expected_calibration_error
from losslab.metrics.levels import split
from losslab.metrics.module import info

_DESCRIPTION = "Rating-distribution suite: accuracy, macro_f1, log_loss, ece, kl to the raters, level_mae."
_KWARGS = """
Args:
    predictions (list of list of float): logits or log-probabilities over the K levels, optionally followed by
        the predicted level (K + 1 values: a loss's own decoding).
    references (list of list of float): the raters' distribution over the K levels.
Returns:
    accuracy, macro_f1, log_loss, ece, kl, level_mae (floats).
"""


class Ratings(evaluate.Metric):
    def _info(self):
        return info(
            _DESCRIPTION, _KWARGS,
            predictions=datasets.Sequence(datasets.Value("float64")),
            references=datasets.Sequence(datasets.Value("float64")),
        )

    def _compute(self, predictions, references):
        t = np.asarray(references, dtype=np.float64)
        k = t.shape[1]
        scores, pred = split(predictions, k)
        logq = log_softmax(scores, axis=-1)
        level = np.floor((t * np.arange(k)).sum(1) + 0.5).astype(int)
        correct = (pred == level).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(t > 0, t * (np.log(t) - logq), 0.0).sum(1)
        return {
            "accuracy": float(correct.mean()),
            "macro_f1": float(f1_score(level, pred, labels=np.arange(k), average="macro", zero_division=0)),
            "log_loss": float(-logq[np.arange(len(level)), level].mean()),
            "ece": expected_calibration_error(np.exp(logq[np.arange(len(pred)), pred]), correct),
            "kl": float(kl.mean()),
            "level_mae": float(np.abs(pred - level).mean()),
        }
