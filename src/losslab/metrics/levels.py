"""The predicted level of a rating-distribution item, decoded the loss's way, for the ratings suite and the report.

A row of the ratings suite's predictions (what the Trainer hands ``compute_metrics`` and what a run keeps in
``predictions/<split>.parquet``) is the K levels' scores (logits or log-probabilities), followed, for a loss
that decodes levels its own way (``Loss.predict_levels``: ``coral``, ``corn`` count the tasks whose
probability is > 0.5), by that level: K + 1 values. A row of K values (every other loss, and runs kept before
levels were kept) is decoded by the argmax of its scores. :func:`with_levels` builds the row on the Trainer's
side; :func:`split` reads it back, for ``metrics/ratings/score.py`` and ``report/flags.py`` alike.
"""

from __future__ import annotations

import functools


def _scores_and_levels(scores, decode, logits, labels=None):
    import torch

    if isinstance(logits, tuple):
        logits = logits[0]
    kept = scores(logits, labels) if scores is not None else logits
    level = decode(logits).to(device=kept.device, dtype=kept.dtype)
    return torch.cat([kept, level.unsqueeze(-1)], dim=-1)


def with_levels(loss_fn, reduce=None):
    """The Trainer's ``preprocess_logits_for_metrics`` for the ratings suite: ``reduce`` (the loss's
    ``predictions``, or None: the logits), with the loss's own level appended when it declares
    ``predict_levels``; else ``reduce`` itself."""
    decode = getattr(loss_fn, "predict_levels", None)
    if decode is None:
        return reduce
    return functools.partial(_scores_and_levels, reduce, decode)


def split(predictions, k: int):
    """``(scores (n, k), level (n,) int64)`` of rows of K or K + 1 values (see above)."""
    import numpy as np

    p = np.asarray(predictions, dtype=np.float64)
    p = p.reshape(len(p), -1)
    if p.shape[1] == k + 1:
        return p[:, :k], np.rint(p[:, k]).astype(np.int64)
    if p.shape[1] != k:
        raise ValueError(f"ratings: a prediction row has {p.shape[1]} values for {k} levels (expected {k}, or "
                         f"{k + 1} with the predicted level last)")
    return p, p.argmax(1).astype(np.int64)
