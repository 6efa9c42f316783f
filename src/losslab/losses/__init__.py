"""losslab's losses: each a Trainer ``compute_loss_func`` with one normalization rule (see ``base``)."""

from losslab.losses.base import IGNORE_INDEX, REGRESSION, SINGLE_LABEL, TASK_KINDS, Loss, normalize
from losslab.losses.classification import CrossEntropy
from losslab.losses.default import ModelDefault
from losslab.losses.regression import MAE, MSE, Huber

__all__ = [
    "IGNORE_INDEX", "REGRESSION", "SINGLE_LABEL", "TASK_KINDS",
    "Loss", "normalize", "MSE", "MAE", "Huber", "CrossEntropy", "ModelDefault",
]
