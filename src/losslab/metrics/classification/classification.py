"""losslab's classification suite as an ``evaluate`` metric: accuracy, macro_f1, log_loss, ece.

Takes the logits (not the argmax), so it can judge calibration: ``log_loss`` is the mean negative
log-likelihood of the true class under softmax(logits); ``ece`` is the expected calibration error of the
top-class confidence over 15 equal-width bins. Loaded by local path so it works offline.
Its maths is ``score.py`` beside it (weighted over items; here every item counts once).
"""

import datasets
import evaluate

from losslab.metrics.classification.score import score
from losslab.metrics.module import info
from losslab.metrics.weighted import once

_DESCRIPTION = "Classification suite: accuracy, macro_f1, log_loss (NLL), ece (15 bins) from logits."
_KWARGS = """
Args:
    predictions (list of list of float): logits, one row per example, one column per class.
    references (list of int): true class ids.
Returns:
    accuracy, macro_f1, log_loss, ece (floats).
"""
class Classification(evaluate.Metric):
    def _info(self):
        return info(
            _DESCRIPTION, _KWARGS,
            predictions=datasets.Sequence(datasets.Value("float64")),
            references=datasets.Value("int64"),
        )

    def _compute(self, predictions, references):
        return once(score, predictions, references)
