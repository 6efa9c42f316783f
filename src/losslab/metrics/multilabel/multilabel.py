"""losslab's multi-label suite as an ``evaluate`` metric: micro_f1, macro_f1, f1 per label, subset_accuracy, lrap,
macro_ap.

Takes the logits: a label is predicted on where its logit is above its threshold (0 by default: probability
> 0.5; ``thresholds=`` one logit per label, e.g. chosen on validation by ``losslab.metrics.thresholds``).
Threshold-free: ``lrap`` (label-ranking average precision) and ``macro_ap`` (average precision of each label
over the items, averaged over labels; 0 for a label with no positive item) use the logits as scores, so they
judge a model whose scores rank well but sit on the wrong side of 0.5. Loaded by local path so it works offline.
"""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import average_precision_score, f1_score, label_ranking_average_precision_score

from losslab.metrics.module import info

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
        scores = np.asarray(predictions, dtype=np.float64)
        y = np.asarray(references, dtype=np.int64)
        cut = np.zeros(y.shape[1]) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
        pred = (scores > cut).astype(np.int64)
        names = list(label_names) if label_names else [str(i) for i in range(y.shape[1])]
        per_label = f1_score(y, pred, average=None, zero_division=0)
        out = {
            "micro_f1": float(f1_score(y, pred, average="micro", zero_division=0)),
            "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
            "subset_accuracy": float((pred == y).all(axis=1).mean()),
            "lrap": float(label_ranking_average_precision_score(y, scores)),
            "macro_ap": float(np.mean([average_precision_score(y[:, j], scores[:, j]) if y[:, j].any() else 0.0
                                       for j in range(y.shape[1])])),
        }
        out.update({f"f1_{n}": float(v) for n, v in zip(names, per_label)})
        return out
