"""Rows a report must not rank: the rules, each on plain numbers.

- **degenerate** (from a run's test predictions; a row is flagged when any of its seeds is): the same
  prediction for every item (regression: every prediction equal; classification and rating levels: one class
  for every item; multi-label: a label predicted on for every item or for none, while the test labels vary;
  NER: one tag for every token, e.g. O: no entity, or no entity right with token accuracy no better
  than all O; generation: one text for every item), a class that is
  at least 10% of the test items never predicted, or accuracy no better than always answering the majority
  class.
- **not converged** (from the validation objective logged at each evaluation): the last evaluation is still a new
  best. Per seed, the last value minus the best earlier value (negative when an earlier evaluation was better);
  flagged when its mean over seeds is more than the objective's spread over seeds (the sample std of the last
  validation value; with one seed, 1% of that value). On a curve that rises at every evaluation this is the
  gain of the last interval. On a plateau it is not fooled by the last step's jitter: a model whose last
  evaluation only climbs back to a level it had reached before is not still improving. (Measured on
  ``ner_losses``, entity F1 on 151 validation entities: at 40 epochs, with the learning rate at most 5.3% of
  its peak, one seed's last evaluation rose by 0.018, five times the spread of the two seeds then done, to a
  value it had beaten by 0.04 eight epochs before; the last-interval gain alone flagged it.)
- **seeds disagree**: the row's std over seeds of the test objective is more than 3× the median std of the
  other rows (and larger than 1e-9).
"""

from __future__ import annotations

import math
import statistics

import numpy as np

NEVER_PREDICTED_SHARE = 0.10
DISAGREE_FACTOR = 3.0
ONE_SEED_GAIN = 0.01


def _one(counts) -> tuple[int, float]:
    values, n = np.unique(counts, return_counts=True)
    return int(values[np.argmax(n)]), float(n.max() / n.sum())


def _class_rule(pred, y, names=None) -> str | None:
    name = (lambda c: names[c] if names and 0 <= c < len(names) else str(c))
    if len(np.unique(pred)) == 1:
        return f"predicts {name(int(pred[0]))} for every item"
    classes, n = np.unique(y, return_counts=True)
    for c, count in zip(classes, n):
        if count >= NEVER_PREDICTED_SHARE * len(y) and not np.any(pred == c):
            return f"never predicts {name(int(c))} ({count / len(y):.0%} of the test items)"
    majority, share = _one(y)
    accuracy = float(np.mean(pred == y))
    if accuracy <= share + 1e-12:
        return f"accuracy {accuracy:.4f} is no better than always predicting {name(majority)} ({share:.4f})"
    return None


def degenerate(suite: str, predictions, labels, label_names=None, thresholds=None) -> str | None:
    """Why these test predictions are degenerate, or None."""
    if len(predictions) == 0:
        return None
    if suite == "regression":
        p = np.asarray(predictions, dtype=np.float64).reshape(len(labels), -1)[:, 0]
        return "the same prediction for every item" if np.ptp(p) == 0 else None
    if suite == "classification":
        return _class_rule(np.asarray(predictions).argmax(1), np.asarray(labels, dtype=np.int64), label_names)
    if suite == "ratings":
        t = np.asarray(labels, dtype=np.float64)
        level = np.floor((t * np.arange(t.shape[1])).sum(1) + 0.5).astype(np.int64)
        return _class_rule(np.asarray(predictions).argmax(1), level, label_names)
    if suite == "multilabel":
        scores, y = np.asarray(predictions, dtype=np.float64), np.asarray(labels) > 0
        cut = np.zeros(y.shape[1]) if thresholds is None else np.asarray(thresholds)
        on = scores > cut
        for j in range(y.shape[1]):
            name = label_names[j] if label_names and j < len(label_names) else str(j)
            if y[:, j].any() and not y[:, j].all():
                if on[:, j].all():
                    return f"{name} predicted on for every item"
                if not on[:, j].any():
                    return f"{name} predicted on for no item"
        return None
    if suite == "entities":
        p, y = np.asarray(predictions).astype(np.int64), np.asarray(labels).astype(np.int64)
        scored = p[y != -100]
        if len(np.unique(scored)) == 1:  # all O: no entity at all (any other tag starts one, as seqeval reads BIO)
            tag = label_names[int(scored[0])] if label_names else str(int(scored[0]))
            return f"tags every token {tag}"
        truth = y[y != -100]
        majority, share = _one(truth)
        accuracy = float(np.mean(scored == truth))
        if accuracy <= share + 1e-12 and label_names:  # and not one entity right: a weak tagger is not degenerate
            from losslab.report.items import entity_counts

            if entity_counts(p, y, label_names)[:, 2].sum() == 0:
                return (f"no entity right, and token accuracy {accuracy:.4f} no better than tagging every token "
                        f"{label_names[majority]} ({share:.4f})")
        return None
    if suite == "generation":
        return "the same text for every item" if len({str(t) for t in predictions}) == 1 else None
    return None


def not_converged(histories: list[list[float]], greater_is_better: bool) -> str | None:
    """``histories``: per seed, the validation objective at each evaluation, in order. Why the row is not
    converged, or None (also None when fewer than two evaluations say nothing)."""
    usable = [h for h in histories if len(h) >= 2]
    if not usable:
        return None
    sign = 1.0 if greater_is_better else -1.0
    gains = [sign * h[-1] - max(sign * v for v in h[:-1]) for h in usable]  # last vs the best before it
    gain = statistics.fmean(gains)
    last = [h[-1] for h in usable]
    if len(last) >= 2:
        spread, what = statistics.stdev(last), "its std over seeds"
    else:
        spread, what = ONE_SEED_GAIN * abs(last[0]), "1% of its value (one seed)"
    if gain > 0 and gain > spread:
        return (f"validation objective still improving: the last evaluation beats the best earlier one by "
                f"+{gain:.4g} (mean over seeds), more than {what} ({spread:.4g})")
    return None


def seeds_disagree(stds: dict[str, float]) -> dict[str, str]:
    """row -> why its seeds disagree wildly, from each row's std over seeds of the test objective (rows with
    fewer than two seeds left out)."""
    out = {}
    for row, sd in stds.items():
        others = [v for r, v in stds.items() if r != row and v is not None and math.isfinite(v)]
        if sd is None or not math.isfinite(sd) or not others:
            continue
        typical = statistics.median(others)
        if sd > 1e-9 and sd > DISAGREE_FACTOR * typical:
            out[row] = f"seeds disagree: std over seeds {sd:.4g}, more than {DISAGREE_FACTOR:g}× the other rows' median ({typical:.4g})"
    return out
