"""losslab's regression suite as an ``evaluate`` metric: mse, rmse, mae, pearson, spearman, r2.

Loaded by local path (``evaluate.load(<this folder>)``) so it works offline. The suite does not depend
on the loss a run trained with: every run is judged on the same yardstick.
"""

import datasets
import evaluate
import numpy as np
from scipy import stats

from losslab.metrics.module import info

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
        p = np.asarray(predictions, dtype=np.float64)
        y = np.asarray(references, dtype=np.float64)
        err = p - y
        mse = float(np.mean(err**2))
        varied = np.ptp(p) > 0 and np.ptp(y) > 0
        ss_tot = float(np.sum((y - y.mean()) ** 2))
        return {
            "mse": mse,
            "rmse": float(np.sqrt(mse)),
            "mae": float(np.mean(np.abs(err))),
            "pearson": float(stats.pearsonr(p, y).statistic) if varied else float("nan"),
            "spearman": float(stats.spearmanr(p, y).statistic) if varied else float("nan"),
            "r2": 1.0 - float(np.sum(err**2)) / ss_tot if ss_tot > 0 else float("nan"),
        }
