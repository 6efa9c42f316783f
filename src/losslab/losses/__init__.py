"""losslab's losses: each a Trainer ``compute_loss_func`` with one normalization rule (see ``base``).

One module per task kind; ``adapt`` turns a user's callable into a correct ``compute_loss_func``.
"""

from losslab.losses.base import Loss, normalize
from losslab.losses.classification import (
    CrossEntropy, Dice, Focal, Hinge, LabelSmoothing, MultiMargin, Poly1, SoftCrossEntropy, Square,
    SquaredHinge, WeightedCrossEntropy,
)
from losslab.losses.composite import Composite
from losslab.losses.default import ModelDefault
from losslab.losses.language_modeling import ChunkedCrossEntropy, TokenCrossEntropy, TokenLabelSmoothing, ZLoss
from losslab.losses.multilabel import BCE, Asymmetric, SigmoidFocal
from losslab.losses.ordinal import Coral, Corn
from losslab.losses.regression import MAE, MSE, GaussianNLL, Huber, LogCosh, Quantile, SmoothL1

__all__ = [
    "Loss", "normalize", "ModelDefault", "Composite",
    "MSE", "MAE", "Huber", "SmoothL1", "LogCosh", "Quantile", "GaussianNLL",
    "CrossEntropy", "SoftCrossEntropy", "LabelSmoothing", "WeightedCrossEntropy", "Focal", "Poly1",
    "MultiMargin", "Hinge", "SquaredHinge", "Dice", "Square",
    "BCE", "SigmoidFocal", "Asymmetric",
    "Coral", "Corn",
    "TokenCrossEntropy", "TokenLabelSmoothing", "ZLoss", "ChunkedCrossEntropy",
]
