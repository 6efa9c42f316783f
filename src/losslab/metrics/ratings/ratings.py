"""losslab's rating-distribution suite as an ``evaluate`` metric, for labels that are distributions over K
ordered levels (the raters' votes): the level of a sentence is its distribution's mean, rounded half up.

accuracy, macro_f1, log_loss (NLL of that level), ece (15 bins), kl (KL divergence from the raters'
distribution to the model's), level_mae (mean absolute error of the predicted level, in levels).
Takes logits (or log-probabilities) over the K levels; the predicted level is their argmax, or, for a loss that
decodes levels its own way (coral, corn: ``Loss.predict_levels``), the level the row carries as its K + 1-th
value (``losslab.metrics.levels``); ece bins the probability of the predicted level.
Loaded by local path so it works offline.
Its maths is ``score.py`` beside it (weighted over items; here every item counts once).
"""

import datasets
import evaluate

from losslab.metrics.module import info
from losslab.metrics.ratings.score import score
from losslab.metrics.weighted import once

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
        return once(score, predictions, references)
