"""losslab's token-classification suite as an ``evaluate`` metric: entity-level precision, recall and F1
(seqeval, CoNLL-style BIO chunks) and token accuracy.

Takes predicted tag ids (the argmax, computed on the fly so the logits of a whole evaluation set are never
held) and reference tag ids with -100 on positions that are not scored (sub-word pieces, special tokens,
padding). Loaded by local path so it works offline.
"""

import datasets
import evaluate
import numpy as np
from seqeval.metrics import f1_score, precision_score, recall_score

from losslab.metrics.module import info

_DESCRIPTION = "Entity-level precision/recall/F1 (seqeval) and token accuracy from tag ids."
_KWARGS = """
Args:
    predictions (list of list of int): predicted tag ids per token.
    references (list of list of int): true tag ids per token, -100 where a position is not scored.
    label_names (list of str): the tag of each id, in BIO form (B-person, I-person, O, ...).
Returns:
    precision, recall, f1 (entity level, micro over entity types), accuracy (token level).
"""


class Entities(evaluate.Metric):
    def _info(self):
        return info(
            _DESCRIPTION, _KWARGS,
            predictions=datasets.Sequence(datasets.Value("int64")),
            references=datasets.Sequence(datasets.Value("int64")),
        )

    def _compute(self, predictions, references, label_names=None):
        if not label_names:
            raise ValueError("entities: pass label_names, the BIO tag of every id")
        true, pred = [], []
        for p_row, y_row in zip(predictions, references):
            keep = [(p, y) for p, y in zip(p_row, y_row) if y != -100]
            true.append([label_names[y] for _, y in keep])
            pred.append([label_names[p] for p, _ in keep])
        flat_true = np.array([t for row in true for t in row])
        flat_pred = np.array([t for row in pred for t in row])
        return {
            "precision": float(precision_score(true, pred, zero_division=0)),
            "recall": float(recall_score(true, pred, zero_division=0)),
            "f1": float(f1_score(true, pred, zero_division=0)),
            "accuracy": float((flat_true == flat_pred).mean()) if len(flat_true) else 0.0,
        }
