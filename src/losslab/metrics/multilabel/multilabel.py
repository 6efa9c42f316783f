"""losslab's multi-label suite as an ``evaluate`` metric: micro_f1, macro_f1, f1 per label, subset_accuracy, lrap,
macro_ap.

Takes the logits: a label is predicted on where its logit is above its threshold (0 by default: probability
> 0.5; ``thresholds=`` one logit per label, e.g. chosen on validation by ``losslab.metrics.thresholds``).
Threshold-free: ``lrap`` (label-ranking average precision) and ``macro_ap`` (average precision of each label
over the items, averaged over labels; 0 for a label with no positive item) use the logits as scores, so they
judge a model whose scores rank well but sit on the wrong side of 0.5. Loaded by local path so it works offline.
Its maths is ``score.py`` beside it (weighted over items; here every item counts once).
"""

import datasets
import evaluate

from losslab.metrics.module import info
from losslab.metrics.multilabel.score import score
from losslab.metrics.weighted import once

_DESCRIPTION = ("Multi-label suite: micro/macro F1, per-label F1, subset accuracy, label-ranking average precision, "
                "macro average precision.")
_KWARGS = """
Args:
    predictions (list of list of float): logits, one row per example, one column per label.
    references (list of list of int): 0/1 targets shaped like the predictions.
    label_names (list of str, optional): names for the per-label F1 keys (default: the label index).
    thresholds (list of float, optional): the logit above which each label is on (default: 0 for every label).
Returns:
    micro_f1, macro_f1, f1_<label>, subset_accuracy, lrap, macro_ap (floats).
"""


class Multilabel(evaluate.Metric):
    def _info(self):
        return info(
            _DESCRIPTION, _KWARGS,
            predictions=datasets.Sequence(datasets.Value("float64")),
            references=datasets.Sequence(datasets.Value("int64")),
        )

    def _compute(self, predictions, references, label_names=None, thresholds=None):
        return once(score, predictions, references, label_names, thresholds)
