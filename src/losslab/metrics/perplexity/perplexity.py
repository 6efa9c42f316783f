"""losslab's language-modelling suite as an ``evaluate`` metric: perplexity and mean token NLL.

Takes, per sequence, the negative log-likelihood of every real next token under the model (computed from
the logits batch by batch, so a whole evaluation set's logits are never held), with negative values marking
positions that are not scored. The same computation for every training loss: perplexity = exp(mean NLL).
Loaded by local path so it works offline.
Its maths is ``score.py`` beside it (weighted over items; here every item counts once).
"""

import datasets
import evaluate

from losslab.metrics.module import info
from losslab.metrics.perplexity.score import score
from losslab.metrics.weighted import once

_DESCRIPTION = "Perplexity = exp(mean next-token negative log-likelihood) over the scored tokens."
_KWARGS = """
Args:
    predictions (list of list of float): next-token NLL per position; negative = not scored (padding).
    references (list of list of int): ignored (the targets are already in the NLL); any values.
Returns:
    perplexity, nll (floats).
"""


class Perplexity(evaluate.Metric):
    def _info(self):
        return info(
            _DESCRIPTION, _KWARGS,
            predictions=datasets.Sequence(datasets.Value("float64")),
            references=datasets.Sequence(datasets.Value("int64")),
        )

    def _compute(self, predictions, references):
        return once(score, predictions, references)
