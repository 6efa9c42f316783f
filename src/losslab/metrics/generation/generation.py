"""losslab's generation suite as an ``evaluate`` metric: rougeL, chrf, exact_match of generated text.

ROUGE-L F1 (``rouge-score``, stemmed, as the ROUGE-1.5.5 reimplementation computes it) averaged over items;
chrF (``sacrebleu``, corpus level, 0–100); exact_match: the share of generations equal to the reference after
lower-casing and whitespace normalisation. Loaded by local path (offline). Judges decoded strings, so it does
not depend on the loss a run trained with.
Its maths is ``score.py`` beside it (weighted over items; here every item counts once).
"""

import datasets
import evaluate

from losslab.metrics.generation.score import score
from losslab.metrics.module import info
from losslab.metrics.weighted import once

_DESCRIPTION = "Generation suite: rougeL (F1), chrf, exact_match of generated against reference text."
_KWARGS = """
Args:
    predictions (list of str): generated texts.
    references (list of str): reference texts.
Returns:
    rougeL (0..1), chrf (0..100), exact_match (0..1).
"""


class Generation(evaluate.Metric):
    def _info(self):
        return info(_DESCRIPTION, _KWARGS, datasets.Value("string"), datasets.Value("string"))

    def _compute(self, predictions, references):
        return once(score, predictions, references)
