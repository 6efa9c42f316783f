"""losslab's regression suite as an ``evaluate`` metric: mse, rmse, mae, pearson, spearman, r2.

Loaded by local path (``evaluate.load(<this folder>)``) so it works offline. The suite does not depend
on the loss a run trained with: every run is judged on the same yardstick.
Its maths is ``score.py`` beside it (weighted over items; here every item counts once).
"""

import datasets
import evaluate

from losslab.metrics.module import info
from losslab.metrics.regression.score import score
from losslab.metrics.weighted import once

_DESCRIPTION = "Regression suite: mse, rmse, mae, pearson, spearman, r2 of predictions against references."
_KWARGS = """
Args:
    predictions (list of float): predicted values.
    references (list of float): true values.
Returns:
    mse, rmse, mae, pearson, spearman, r2 (floats; the correlations are NaN for constant predictions).
"""


class Regression(evaluate.Metric):
    def _info(self):
        return info(_DESCRIPTION, _KWARGS, datasets.Value("float64"), datasets.Value("float64"))

    def _compute(self, predictions, references):
        return once(score, predictions, references)
