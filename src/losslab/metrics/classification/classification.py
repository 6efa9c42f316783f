"""losslab's classification suite as an ``evaluate`` metric: accuracy, macro_f1, log_loss, ece.

Takes the logits (not the argmax), so it can judge calibration: ``log_loss`` is the mean negative
log-likelihood of the true class under softmax(logits); ``ece`` is the expected calibration error of the
top-class confidence over 15 equal-width bins. Loaded by local path so it works offline.
"""

import datasets
import evaluate
import numpy as np
from scipy.special import log_softmax
from sklearn.metrics import f1_score

from losslab.metrics.calibration import expected_calibration_error
from losslab.metrics.module import info

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
        logits = np.asarray(predictions, dtype=np.float64)
        y = np.asarray(references, dtype=np.int64)
        logp = log_softmax(logits, axis=-1)
        pred = logp.argmax(-1)
        correct = (pred == y).astype(np.float64)
        return {
            "accuracy": float(correct.mean()),
            "macro_f1": float(
                f1_score(y, pred, labels=np.arange(logits.shape[1]), average="macro", zero_division=0)
            ),
            "log_loss": float(-logp[np.arange(len(y)), y].mean()),
            "ece": expected_calibration_error(np.exp(logp.max(-1)), correct),
        }
