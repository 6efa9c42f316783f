"""losslab's losses: each a Trainer ``compute_loss_func`` with one normalization rule (see ``base``).

One module per task kind; ``adapt`` turns a user's callable into a correct ``compute_loss_func``.

The public names (``losslab.losses.Focal``, what ``loss._target_`` names) are resolved on first use
(PEP 562): importing ``losslab.losses.base`` from a loss module runs this file, and were it to import every
loss module in turn, the package would import itself through them (``losses`` -> ``classification`` ->
``losses``). ``tests/test_imports.py`` checks that every name below resolves to the module named and that
every loss class of the package is listed.
"""

from __future__ import annotations

import importlib

# public name -> the module of this package that defines it
WHERE = {
    "Loss": "base", "normalize": "base",
    "ModelDefault": "default", "Composite": "composite",
    **dict.fromkeys(["MSE", "MAE", "Huber", "SmoothL1", "LogCosh", "Quantile", "GaussianNLL"], "regression"),
    **dict.fromkeys(["CrossEntropy", "SoftCrossEntropy", "LabelSmoothing", "WeightedCrossEntropy", "Focal", "Poly1",
                     "MultiMargin", "Hinge", "SquaredHinge", "Dice", "Square"], "classification"),
    **dict.fromkeys(["BCE", "SigmoidFocal", "Asymmetric"], "multilabel"),
    **dict.fromkeys(["Coral", "Corn"], "ordinal"),
    **dict.fromkeys(["TokenCrossEntropy", "TokenLabelSmoothing", "ZLoss", "ChunkedCrossEntropy"], "language_modeling"),
}
__all__ = list(WHERE)


def __getattr__(name: str):
    module = WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
