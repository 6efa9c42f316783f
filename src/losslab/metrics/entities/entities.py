"""losslab's token-classification suite as an ``evaluate`` metric: entity-level precision, recall and F1
(seqeval, CoNLL-style BIO chunks) and token accuracy.

Takes predicted tag ids (the argmax, computed on the fly so the logits of a whole evaluation set are never
held) and reference tag ids with -100 on positions that are not scored (sub-word pieces, special tokens,
padding). Loaded by local path so it works offline.
Its maths is ``score.py`` beside it (weighted over items; here every item counts once).
"""

import datasets
import evaluate

from losslab.metrics.entities.score import score
from losslab.metrics.module import info
from losslab.metrics.weighted import once

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
        return once(score, predictions, references, label_names)
