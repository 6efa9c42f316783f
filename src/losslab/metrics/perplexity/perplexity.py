"""losslab's language-modelling suite as an ``evaluate`` metric: perplexity and mean token NLL.

Takes, per sequence, the negative log-likelihood of every real next token under the model (computed from
the logits batch by batch, so a whole evaluation set's logits are never held), with negative values marking
positions that are not scored. The same computation for every training loss: perplexity = exp(mean NLL).
Loaded by local path so it works offline.
"""

import datasets
import evaluate
import numpy as np

from losslab.metrics.module import info

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
        values = np.concatenate([np.asarray(r, dtype=np.float64) for r in predictions])
        scored = values[values >= 0]
        nll = float(scored.mean()) if len(scored) else float("nan")
        return {"perplexity": float(np.exp(nll)), "nll": nll}
